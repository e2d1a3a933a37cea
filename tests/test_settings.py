from __future__ import annotations

import pytest

from lastro import ConfigurationError, UnsafeProductionSettings, get_settings

STRONG_KEY = "k" * 48


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
