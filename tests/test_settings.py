from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError, model_validator
from sqlalchemy import make_url

from lastro import ConfigurationError, Settings, UnsafeProductionSettings, get_settings
from lastro.settings import PLACEHOLDER_FRAGMENTS, is_sqlite_url, load_settings

STRONG_KEY = "Vt3kQ9xLm2Rb7ZpW4sNc8YfHd1Ju6GaE5oKi0TqXyBn-Mw_r"
KEY_32 = "q8Zr2mXv5LbT9wKc3NfJ7yHd4GsP6aUe"
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
PLACEHOLDERS = [
    "replace-me-with-at-least-32-random-characters",
    "replace-with-the-output-of-secrets.token_urlsafe-48",
    "REPLACE_ME_REPLACE_ME_REPLACE_ME_REPLACE_ME",
    "changeme-changeme-changeme-changeme",
    "change-me-to-something-long-and-random",
    "change_this_to_a_long_random_string_please",
    "your-secret-key-of-at-least-32-characters",
    "YourSecretKeyGoesHereAndItIsLongEnough",
    "my-super-secret-key-that-nobody-will-guess",
    "an-example-key-for-the-documentation-only",
    "placeholder-placeholder-placeholder",
    "insecure-development-key-do-not-use-in-prod",
    "password-password-password-password",
    "k" * 32,
    "k" * 48,
    "0" * 64,
    "abababababababababababababababab",
    "1234567123456712345671234567123456712345",
]


def test_defaults_are_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no ENVIRONMENT the service is in production: JSON logs, no docs, unsafe values refused."""
    monkeypatch.delenv("ENVIRONMENT")
    settings = Settings(SECRET_KEY=STRONG_KEY)
    assert settings.is_production
    assert settings.log_format == "json"
    assert not settings.docs_enabled
    with pytest.raises(UnsafeProductionSettings, match="SECRET_KEY"):
        get_settings()


def test_development_defaults_to_a_local_sqlite_file() -> None:
    """In development the service runs on ./var with console logs and docs."""
    settings = get_settings()
    assert settings.ENVIRONMENT == "development"
    assert settings.docs_enabled
    assert settings.DATABASE_URL.startswith("sqlite:///./var/")
    assert settings.log_format == "console"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_variables_use_plain_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG_LEVEL, WORKERS, BIND and CORS_ORIGINS are read from their plain names."""
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("WORKERS", "3")
    monkeypatch.setenv("BIND", "0.0.0.0:9000")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    settings = get_settings()
    assert settings.LOG_LEVEL == "WARNING"
    assert settings.WORKERS == 3
    assert settings.port == 9000
    assert settings.CORS_ORIGINS == ["https://a.example", "https://b.example"]


def test_production_logs_json_by_default() -> None:
    """Production without LOG_FORMAT writes JSON lines."""
    assert get_settings(ENVIRONMENT="production", SECRET_KEY=STRONG_KEY).log_format == "json"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DEBUG": "true", "SECRET_KEY": STRONG_KEY}, "DEBUG"),
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": STRONG_KEY, "CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
    ],
)
def test_production_refuses_unsafe_values(overrides: dict[str, str], variable: str) -> None:
    """Each unsafe production value is refused with a message naming the variable."""
    with pytest.raises(UnsafeProductionSettings, match=variable):
        get_settings(ENVIRONMENT="production", **overrides)


def test_development_accepts_what_production_refuses() -> None:
    """DEBUG, no key and wildcard CORS are fine in development."""
    settings = get_settings(DEBUG="true", CORS_ORIGINS="*")
    assert settings.problems() == []


@pytest.mark.parametrize(("name", "value"), [("WORKERS", "many"), ("WORKERS", "0"), ("BIND", "localhost")])
def test_malformed_values_name_the_setting(name: str, value: str) -> None:
    """A malformed value raises ConfigurationError naming the variable and the expected form."""
    with pytest.raises(ConfigurationError, match=name):
        get_settings(**{name: value})


def test_workers_accepts_auto_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """WORKERS=AUTO means the auto formula."""
    monkeypatch.setenv("WORKERS", "AUTO")
    assert get_settings().WORKERS == "auto"


def test_a_secret_key_of_exactly_32_characters_is_accepted() -> None:
    """A random key of 32 characters, the shortest allowed, passes in production."""
    assert len(KEY_32) == 32
    assert get_settings(ENVIRONMENT="production", SECRET_KEY=KEY_32).production_problems() == []


def test_a_secret_key_of_31_characters_is_refused_with_the_command_that_makes_one() -> None:
    """One character short is refused, naming SECRET_KEY, the minimum and the command that generates a key."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", SECRET_KEY=KEY_32[:31])
    assert "SECRET_KEY must be at least 32 characters" in str(refused.value)
    assert GENERATE_KEY in str(refused.value)


@pytest.mark.parametrize("key", PLACEHOLDERS)
def test_production_refuses_a_placeholder_secret_key(key: str) -> None:
    """A long enough key copied from a guide or template, or one character repeated, is refused."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", SECRET_KEY=key)
    message = str(refused.value)
    assert message.startswith("SECRET_KEY "), message
    assert GENERATE_KEY in message
    assert key not in message  # the refusal does not echo the secret


def test_development_accepts_a_placeholder_secret_key() -> None:
    """Placeholders are only refused in production."""
    assert get_settings(SECRET_KEY=PLACEHOLDERS[0]).problems() == []


def test_generated_keys_are_never_taken_for_placeholders() -> None:
    """Keys made by the documented command (and 32-character hex keys) are accepted, a few hundred of them."""
    keys = [secrets.token_urlsafe(48) for _ in range(300)] + [secrets.token_hex(16) for _ in range(300)]
    production = get_settings(ENVIRONMENT="production", SECRET_KEY=KEY_32)
    refused = [
        key
        for key in keys
        if production.model_copy(update={"SECRET_KEY": SecretStr(key)}).production_problems()
    ]
    assert refused == []


URLS = [
    "sqlite:///./var/lastro.db",
    "sqlite+pysqlite:///var/x.db?timeout=5",
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite:///file:shared?mode=memory&uri=true",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://user:sqlite@host/sqlite",
    "postgres://user:pass@host/db",
    "sqlite3:///x.db",
    "sqlitex:///x.db",
    "mysql://u@h/sqlite:///x",
    "sqlite:///x.db?note=a://b",
]


@pytest.mark.parametrize("url", URLS)
def test_sqlite_urls_are_told_as_sqlalchemy_tells_them(url: str) -> None:
    """is_sqlite_url agrees with SQLAlchemy's own reading of the URL's backend, whatever the driver."""
    assert is_sqlite_url(url) is (make_url(url).get_backend_name() == "sqlite")
    assert is_sqlite_url(make_url(url)) is is_sqlite_url(url)


@pytest.mark.parametrize("url", ["", "sqlite", "./var/lastro.db", "sqlite:/x.db"])
def test_what_is_no_url_is_no_sqlite_url(url: str) -> None:
    """A string without a scheme is not taken for SQLite (the engine then refuses it by name)."""
    assert not is_sqlite_url(url)


MIB = 1024 * 1024
DEFAULTS = {
    "ENVIRONMENT": "development",
    "DEBUG": False,
    "SERVICE_NAME": "lastro",
    "SERVICE_VERSION": "0.0.0",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": None,
    "TRACING": "off",
    "TRACING_SAMPLE_RATIO": 1.0,
    "DATABASE_URL": "sqlite:///./var/lastro.db",
    "REDIS_URL": None,
    "REDIS_SOCKET_TIMEOUT": 0.5,
    "INSTANCES": 1,
    "MIGRATIONS_DIR": Path("migrations"),
    "DB_POOL_SIZE": None,
    "DB_MAX_OVERFLOW": None,
    "DB_POOL_TIMEOUT": 5.0,
    "DB_POOL_RECYCLE": 1800.0,
    "DB_POOL_PRE_PING": True,
    "DB_STATEMENT_TIMEOUT": 15.0,
    "DB_CONNECT_TIMEOUT": 5.0,
    "DB_RETRY_ATTEMPTS": 5,
    "DB_RETRY_DEADLINE": 5.0,
    "DB_BREAKER_THRESHOLD": 3,
    "DB_WATCH_INTERVAL": 1.0,
    "DB_BREAKER_RESET": 2.0,
    "SQLITE_PRAGMAS": {},
    "SQLITE_SYNCHRONOUS": "NORMAL",
    "SQLITE_WAL_MAX_BYTES": 64 * MIB,
    "DISK_MIN_FREE_BYTES": 64 * MIB,
    "SQLITE_WRITE_LOCK": "auto",
    "SQLITE_ALLOW_UNSAFE_VERSION": False,
    "WORKERS": "auto",
    "CONTROL_DIR": None,
    "WORKER_START_METHOD": "auto",
    "BIND": "127.0.0.1:8000",
    "TIMEOUT": 30.0,
    "KEEPALIVE": 5.0,
    "GRACEFUL_TIMEOUT": 30.0,
    "MAX_REQUESTS": 0,
    "MAX_REQUESTS_JITTER": 0,
    "MAX_IN_FLIGHT": 256,
    "MAX_LOOP_LAG": 0.5,
    "MAX_CONNECTIONS": 2048,
    "HEADER_TIMEOUT": 20.0,
    "BODY_TIMEOUT": 20.0,
    "BODY_MIN_RATE": 500,
    "MAX_BODY_BYTES": 10 * MIB,
    "HEALTH_CHECK_TIMEOUT": 2.0,
    "SECRET_KEY": None,
    "RATE_LIMIT_DEFAULT": "600/minute",
    "RATE_LIMIT_LOGIN": "20/minute",
    "TRUSTED_PROXIES": [],
    "ALLOWED_HOSTS": ["*"],
    "CORS_ORIGINS": [],
    "CORS_ALLOW_CREDENTIALS": False,
    "HSTS_SECONDS": 31_536_000,
    "REFERRER_POLICY": "no-referrer",
    "REQUEST_TIMEOUT": 30.0,
    "MAX_MULTIPART_PARTS": 100,
    "MAX_MULTIPART_FILES": 10,
    "MAX_PAGE_SIZE": 100,
    "DOCS_ENABLED": None,
    "HEALTH_TOKEN": None,
    "HEALTH_NETWORKS": ["127.0.0.1/8", "::1/128"],
    "METRICS_ENABLED": True,
    "METRICS_TOKEN": None,
    "METRICS_NETWORKS": ["127.0.0.1/8", "::1/128"],
    "MONITOR_INTERVAL": 2.0,
    "MAX_WORKER_RSS_MB": 0,
    "SHARED_MEMORY_DIR": None,
    "SLOW_REQUEST_SECONDS": 1.0,
    "DASHBOARD_ENABLED": True,
    "EVENTS_RETENTION": 3600.0,
    "EVENTS_REPLAY_MAX": 1000,
    "EVENTS_QUEUE_SIZE": 256,
    "EVENTS_POLL_INTERVAL": 0.01,
    "JOB_RUNS_RETENTION": 604800.0,
    "BACKUP_DIR": Path("backups"),
    "BACKUP_EVERY": None,
    "BACKUP_CRON": None,
    "BACKUP_KEEP": 7,
    "BACKUP_MAX_AGE_DAYS": 7,
    "BACKUP_PATHS": [],
}

# Each bounded setting: the lowest value it takes, and the nearest value below that it refuses.
POSITIVE = (0.001, 0)
NOT_NEGATIVE = (0, -0.001)
BOUNDS = {
    "DB_POOL_SIZE": (1, 0),
    "DB_MAX_OVERFLOW": (0, -1),
    "DB_POOL_TIMEOUT": POSITIVE,
    "DB_POOL_RECYCLE": POSITIVE,
    "DB_STATEMENT_TIMEOUT": NOT_NEGATIVE,
    "DB_CONNECT_TIMEOUT": POSITIVE,
    "DB_RETRY_ATTEMPTS": (1, 0),
    "DB_RETRY_DEADLINE": POSITIVE,
    "DB_BREAKER_THRESHOLD": (1, 0),
    "DB_WATCH_INTERVAL": POSITIVE,
    "DB_BREAKER_RESET": POSITIVE,
    "SQLITE_WAL_MAX_BYTES": (0, -1),
    "DISK_MIN_FREE_BYTES": (0, -1),
    "TIMEOUT": POSITIVE,
    "KEEPALIVE": NOT_NEGATIVE,
    "GRACEFUL_TIMEOUT": NOT_NEGATIVE,
    "MAX_REQUESTS": (0, -1),
    "MAX_REQUESTS_JITTER": (0, -1),
    "MAX_IN_FLIGHT": (0, -1),
    "MAX_LOOP_LAG": NOT_NEGATIVE,
    "MAX_CONNECTIONS": (1, 0),
    "HEADER_TIMEOUT": POSITIVE,
    "BODY_TIMEOUT": POSITIVE,
    "BODY_MIN_RATE": (0, -1),
    "MAX_BODY_BYTES": (0, -1),
    "HEALTH_CHECK_TIMEOUT": POSITIVE,
    "REDIS_SOCKET_TIMEOUT": POSITIVE,
    "INSTANCES": (1, 0),
    "HSTS_SECONDS": (0, -1),
    "REQUEST_TIMEOUT": NOT_NEGATIVE,
    "MAX_MULTIPART_PARTS": (1, 0),
    "MAX_MULTIPART_FILES": (0, -1),
    "MAX_PAGE_SIZE": (1, 0),
    "MONITOR_INTERVAL": POSITIVE,
    "MAX_WORKER_RSS_MB": (0, -1),
    "TRACING_SAMPLE_RATIO": NOT_NEGATIVE,
    "EVENTS_RETENTION": POSITIVE,
    "EVENTS_REPLAY_MAX": (1, 0),
    "EVENTS_QUEUE_SIZE": (1, 0),
    "EVENTS_POLL_INTERVAL": POSITIVE,
    "BACKUP_EVERY": POSITIVE,
    "BACKUP_KEEP": (1, 0),
    "BACKUP_MAX_AGE_DAYS": POSITIVE,
}


def test_every_setting_has_its_documented_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty environment gives each setting the default the documentation names."""
    monkeypatch.delenv("SHARED_MEMORY_DIR")  # the tests' own, set for every test
    assert get_settings().model_dump() == DEFAULTS


@pytest.mark.parametrize(("name", "bounds"), BOUNDS.items(), ids=list(BOUNDS))
def test_a_bounded_setting_takes_its_lowest_value(name: str, bounds: tuple[float, float]) -> None:
    """A bounded setting accepts the lowest value its bound allows."""
    assert getattr(get_settings(**{name: bounds[0]}), name) == bounds[0]


@pytest.mark.parametrize(("name", "bounds"), BOUNDS.items(), ids=list(BOUNDS))
def test_a_bounded_setting_refuses_the_value_below_its_bound(name: str, bounds: tuple[float, float]) -> None:
    """Just past its bound, a setting is refused with a message that starts with its name."""
    with pytest.raises(ConfigurationError, match=f"^{name}: "):
        get_settings(**{name: bounds[1]})


@pytest.mark.parametrize("level", ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"])
def test_every_log_level_is_accepted_in_any_case(level: str) -> None:
    """Each of the five levels is accepted, written in lower case too."""
    assert level == get_settings(LOG_LEVEL=level.lower()).LOG_LEVEL


def test_an_unknown_log_level_names_the_levels() -> None:
    """A level that is not one of the five is refused, listing them and echoing the value."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(LOG_LEVEL="loud")
    assert str(refused.value) == (
        "LOG_LEVEL: Input should be 'CRITICAL', 'ERROR', 'WARNING', 'INFO' or 'DEBUG' (got 'LOUD')"
    )


def test_settings_are_read_from_a_dot_env_file(tmp_path: Path) -> None:
    """A .env file in the working directory is read, its names in any case, UTF-8 text included."""
    (tmp_path / ".env").write_text("service_name=café\nWORKERS=2\nUNKNOWN_NAME=ignored\n", encoding="utf-8")
    settings = get_settings()
    assert (settings.SERVICE_NAME, settings.WORKERS) == ("café", 2)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed once built."""
    settings = get_settings()
    with pytest.raises(ValidationError):
        settings.DEBUG = True


def test_workers_of_one_is_accepted() -> None:
    """WORKERS=1, the lowest count, is accepted."""
    assert get_settings(WORKERS="1").WORKERS == 1


@pytest.mark.parametrize("value", ["many", "0", "-2"])
def test_workers_refusal_says_what_is_expected(value: str) -> None:
    """A WORKERS that is not a positive integer or auto is refused with the expected form and the value."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(WORKERS=value)
    assert str(refused.value) == f"WORKERS must be a positive integer or 'auto' (got {value!r})"


def test_workers_auto_accepts_surrounding_spaces() -> None:
    """WORKERS=' auto ' means the auto formula."""
    assert get_settings(WORKERS=" auto ").WORKERS == "auto"


def test_two_malformed_values_are_both_named() -> None:
    """Every malformed value is named in one message, in the order of the settings."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(DB_POOL_SIZE=0, MAX_CONNECTIONS=0)
    assert str(refused.value) == (
        "DB_POOL_SIZE: Input should be greater than or equal to 1 (got 0); "
        "MAX_CONNECTIONS: Input should be greater than or equal to 1 (got 0)"
    )


def test_sqlite_pragmas_that_are_not_json_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLITE_PRAGMAS that is not JSON is refused naming it and the parser's reason."""
    monkeypatch.setenv("SQLITE_PRAGMAS", "not json")
    with pytest.raises(ConfigurationError) as refused:
        get_settings()
    assert (
        str(refused.value) == "SQLITE_PRAGMAS must be valid JSON (Expecting value: line 1 column 1 (char 0))"
    )


def test_sqlite_pragmas_are_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLITE_PRAGMAS holds a JSON object of pragma names and values."""
    monkeypatch.setenv("SQLITE_PRAGMAS", '{"cache_size": -64000, "temp_store": "memory"}')
    assert get_settings().SQLITE_PRAGMAS == {"cache_size": -64000, "temp_store": "memory"}


def test_cors_origins_given_as_a_list_are_kept() -> None:
    """CORS_ORIGINS passed as a list is taken as it is."""
    assert get_settings(CORS_ORIGINS=["https://a.example"]).CORS_ORIGINS == ["https://a.example"]


def test_empty_cors_entries_are_dropped() -> None:
    """Blank entries between commas are not origins."""
    assert get_settings(CORS_ORIGINS=" , https://a.example,, ").CORS_ORIGINS == ["https://a.example"]


def test_explicit_log_format_wins_over_the_environment_default() -> None:
    """LOG_FORMAT=console in production logs to the console; json in development logs JSON."""
    production = get_settings(ENVIRONMENT="production", SECRET_KEY=STRONG_KEY, LOG_FORMAT="console")
    assert (production.log_format, get_settings(LOG_FORMAT="json").log_format) == ("console", "json")


def test_production_is_only_the_production_environment() -> None:
    """is_production holds in production and not in development."""
    production = get_settings(ENVIRONMENT="production", SECRET_KEY=STRONG_KEY)
    assert (production.is_production, get_settings().is_production) == (True, False)


@pytest.mark.parametrize(
    ("bind", "host", "port"),
    [
        ("[::1]:8000", "::1", 8000),
        ("[::]:0", "::", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
        ("localhost:1", "localhost", 1),
        ("XPS-13:8000", "XPS-13", 8000),
    ],
)
def test_bind_splits_into_host_and_port(bind: str, host: str, port: int) -> None:
    """BIND gives a host (an IPv6 one without its brackets) and a port from 0 to 65535."""
    settings = get_settings(BIND=bind)
    assert (settings.BIND, settings.host, settings.port) == (bind, host, port)


@pytest.mark.parametrize("bind", ["localhost", ":8000", "localhost:", "localhost:http", "localhost:65536"])
def test_a_bind_without_host_or_valid_port_is_refused(bind: str) -> None:
    """BIND needs a host and a port below 65536, and the refusal echoes the value once."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(BIND=bind)
    assert str(refused.value) == (
        f"BIND must be HOST:PORT, e.g. 127.0.0.1:8000; port 0 picks a free one (got {bind!r})"
    )


@pytest.mark.parametrize("fragment", PLACEHOLDER_FRAGMENTS)
def test_each_placeholder_fragment_alone_is_refused(fragment: str) -> None:
    """A random-looking key holding one placeholder fragment is refused, naming the fragment."""
    key = "Vt3kQ9xLm2Rb7ZpW4Nc8" + "-".join(fragment.upper())
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", SECRET_KEY=key)
    assert f"it contains {fragment!r}" in str(refused.value)


def test_a_key_of_eight_distinct_characters_is_accepted() -> None:
    """Eight distinct characters, the fewest allowed, pass; seven are refused."""
    production = get_settings(ENVIRONMENT="production", SECRET_KEY="abcdefgh" * 4)
    seven = production.model_copy(update={"SECRET_KEY": SecretStr("abcdefga" * 4)})
    assert (production.production_problems(), len(seven.production_problems())) == ([], 1)


def test_a_short_key_refusal_is_one_line_with_the_command() -> None:
    """A short key is refused with one message: the minimum, then the command in backquotes."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", SECRET_KEY="short")
    assert str(refused.value) == (
        "SECRET_KEY must be at least 32 characters in production: "
        f"set SECRET_KEY to the output of `{GENERATE_KEY}`"
    )


def test_every_production_problem_is_named_at_once() -> None:
    """DEBUG, a missing key and a wildcard origin are all named in one refusal, in that order."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", DEBUG="true", CORS_ORIGINS="https://a.example,*")
    assert str(refused.value) == (
        "DEBUG=true is not allowed in production: set DEBUG=false; "
        "SECRET_KEY must be at least 32 characters in production: "
        f"set SECRET_KEY to the output of `{GENERATE_KEY}`; "
        "CORS_ORIGINS must not contain a wildcard in production: "
        "list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com"
    )


def test_a_nested_value_is_named_by_its_path() -> None:
    """A malformed value inside a setting is named by the setting and the keys down to it."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(SQLITE_PRAGMAS={"cache_size": [1]})
    assert str(refused.value) == (
        "SQLITE_PRAGMAS.cache_size.str: Input should be a valid string (got [1]); "
        "SQLITE_PRAGMAS.cache_size.int: Input should be a valid integer (got [1])"
    )


WILDCARD_WITH_CREDENTIALS = (
    "CORS_ORIGINS=* with CORS_ALLOW_CREDENTIALS=true lets any site send requests with the user's cookies: "
    "list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com, or set CORS_ALLOW_CREDENTIALS=false"
)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_wildcard_origin_with_credentials_is_refused_in_every_environment(environment: str) -> None:
    """CORS_ORIGINS=* with CORS_ALLOW_CREDENTIALS=true is one line naming both settings and the fix."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(
            ENVIRONMENT=environment, SECRET_KEY=STRONG_KEY, CORS_ORIGINS="*", CORS_ALLOW_CREDENTIALS="true"
        )
    assert str(refused.value) == WILDCARD_WITH_CREDENTIALS


def test_a_wildcard_with_credentials_is_unsafe_production_settings_in_production() -> None:
    """In production the same refusal is an UnsafeProductionSettings, as every production refusal is."""
    with pytest.raises(UnsafeProductionSettings):
        get_settings(
            ENVIRONMENT="production", SECRET_KEY=STRONG_KEY, CORS_ORIGINS="*", CORS_ALLOW_CREDENTIALS="true"
        )


def test_listed_origins_with_credentials_are_accepted_in_production() -> None:
    """Credentials with origins named one by one are what CORS_ALLOW_CREDENTIALS is for."""
    settings = get_settings(
        ENVIRONMENT="production",
        SECRET_KEY=STRONG_KEY,
        CORS_ORIGINS="https://app.example.com",
        CORS_ALLOW_CREDENTIALS="true",
    )
    assert settings.problems() == []


@pytest.mark.parametrize(
    "token", ["short-token", "changeme-changeme-changeme-changeme"], ids=["short", "placeholder"]
)
def test_a_guessable_health_token_is_refused_in_production(token: str) -> None:
    """HEALTH_TOKEN follows SECRET_KEY's rules in production: one line naming it and the command."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", SECRET_KEY=STRONG_KEY, HEALTH_TOKEN=token)
    assert str(refused.value).startswith("HEALTH_TOKEN ")
    assert str(refused.value).endswith(f"in production: set HEALTH_TOKEN to the output of `{GENERATE_KEY}`")


def test_a_random_health_token_is_accepted_in_production() -> None:
    """A token made by the documented command passes; development accepts any token."""
    production = get_settings(ENVIRONMENT="production", SECRET_KEY=STRONG_KEY, HEALTH_TOKEN=KEY_32)
    assert (production.problems(), get_settings(HEALTH_TOKEN="short").problems()) == ([], [])


def test_several_instances_without_redis_are_refused_in_production() -> None:
    """INSTANCES=2 with no REDIS_URL is one line naming both settings and both fixes."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(ENVIRONMENT="production", SECRET_KEY=STRONG_KEY, INSTANCES="2")
    assert str(refused.value) == (
        "INSTANCES=2 shares rate limits and caches only through Redis, and REDIS_URL is not set: "
        "set REDIS_URL=redis://HOST:6379/0, or INSTANCES=1"
    )


def test_several_instances_with_redis_are_accepted_in_production() -> None:
    """INSTANCES=3 with a REDIS_URL shares its state through Redis, and is accepted."""
    settings = get_settings(
        ENVIRONMENT="production", SECRET_KEY=STRONG_KEY, INSTANCES="3", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    assert settings.problems() == []


def test_several_instances_without_redis_are_accepted_in_development() -> None:
    """A developer may declare INSTANCES=2 on one machine without Redis."""
    assert get_settings(INSTANCES="2").problems() == []


class RegionCheckedSettings(Settings):
    REGION: str = "eu"

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.REGION == "test":
            problems.append("REGION=test is not allowed in production: set REGION to the deployed region")
        return problems


def test_a_subclass_adds_its_own_production_refusal_after_lastros() -> None:
    """An application's production refusal is reported with lastro's, in one message, after them."""
    with pytest.raises(UnsafeProductionSettings) as refused:
        get_settings(
            RegionCheckedSettings,
            ENVIRONMENT="production",
            DEBUG="true",
            REGION="test",
            SECRET_KEY=STRONG_KEY,
        )
    assert str(refused.value) == (
        "DEBUG=true is not allowed in production: set DEBUG=false; "
        "REGION=test is not allowed in production: set REGION to the deployed region"
    )


def test_a_subclass_production_refusal_is_not_asked_in_development() -> None:
    """production_problems() is asked only in production: development accepts REGION=test."""
    assert get_settings(RegionCheckedSettings, REGION="test").REGION == "test"


def test_load_settings_builds_what_production_would_refuse() -> None:
    """load_settings() returns production settings get_settings() refuses, for commands that serve nothing."""
    settings = load_settings(ENVIRONMENT="production")
    assert settings.is_production
    assert settings.problems() != []


def test_load_settings_still_refuses_a_malformed_value() -> None:
    """load_settings() skips the safety refusals only: WORKERS=many is still a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="WORKERS"):
        load_settings(WORKERS="many")


class RegionalSettings(Settings):
    @model_validator(mode="after")
    def _require_region(self) -> RegionalSettings:
        raise ValueError("REGION is required")


def test_an_application_check_of_the_whole_settings_is_named_settings() -> None:
    """An application's check over all its settings is reported as about the settings."""
    with pytest.raises(ConfigurationError) as refused:
        get_settings(RegionalSettings)
    assert str(refused.value) == "settings: REGION is required"


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("0.25", 0.25), ("2", 2.0)])
def test_slow_request_seconds_takes_zero_and_any_positive_number(value: str, seconds: float) -> None:
    """SLOW_REQUEST_SECONDS is a number of seconds, 0 (the warning off) included."""
    settings = get_settings(SLOW_REQUEST_SECONDS=value)
    assert seconds == settings.SLOW_REQUEST_SECONDS


@pytest.mark.parametrize("value", ["off", "-0.5", "nan", "inf", ""])
def test_slow_request_seconds_refusal_names_the_form(value: str) -> None:
    """Anything but a finite number of seconds >= 0 is refused, naming the setting and the form, 0 for off."""
    with pytest.raises(ConfigurationError) as caught:
        get_settings(SLOW_REQUEST_SECONDS=value)
    assert str(caught.value) == (
        "SLOW_REQUEST_SECONDS must be a number of seconds, e.g. 1.5, or 0 to log no slow request "
        f"(got {value!r})"
    )


def test_backup_paths_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """BACKUP_PATHS=var/images, var/uploads is two directories."""
    monkeypatch.setenv("BACKUP_PATHS", "var/images, var/uploads")
    assert [Path("var/images"), Path("var/uploads")] == get_settings().BACKUP_PATHS


def test_a_backup_cron_without_five_fields_names_the_setting_and_the_form() -> None:
    """BACKUP_CRON must have five fields; the refusal shows an example."""
    with pytest.raises(
        ConfigurationError, match=r"^BACKUP_CRON must be a cron expression of 5 fields .* 0 3 \* \* \*"
    ):
        get_settings(BACKUP_CRON="daily")


def test_backup_every_and_backup_cron_together_are_refused() -> None:
    """A schedule is BACKUP_EVERY or BACKUP_CRON, not both."""
    with pytest.raises(ConfigurationError, match="BACKUP_EVERY and BACKUP_CRON are both set"):
        get_settings(BACKUP_EVERY=60, BACKUP_CRON="0 3 * * *")
