from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr
from sqlalchemy import make_url

from lastro import ConfigurationError, UnsafeProductionSettings, get_settings
from lastro.settings import is_sqlite_url

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


def test_defaults_are_development_on_a_local_sqlite_file() -> None:
    """With an empty environment the service runs in development on ./var, console logs."""
    settings = get_settings()
    assert settings.ENVIRONMENT == "development"
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
    assert settings.production_problems() == []


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
    assert get_settings(SECRET_KEY=PLACEHOLDERS[0]).production_problems() == []


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
