"""`check_database_url`: a DATABASE_URL lastro cannot use is one line naming the variable and the fix."""

from __future__ import annotations

import sys

import pytest

from lastro.db.urls import check_database_url
from lastro.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///./var/app.db", "pysqlite"),
        ("sqlite://", "pysqlite"),
        ("postgres://user@127.0.0.1/test", "psycopg"),
        ("postgresql://user@127.0.0.1/test", "psycopg"),
        ("postgresql+psycopg://user@127.0.0.1/test", "psycopg"),
    ],
)
def test_supported_urls_pass(url: str, driver: str) -> None:
    """SQLite and PostgreSQL URLs come back as lastro reads them."""
    assert check_database_url(url).get_driver_name() == driver


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("nonsense", "must be a database URL"),
        ("", "must be a database URL"),
        ("mysql://user@127.0.0.1/db", "must be SQLite or PostgreSQL"),
        ("postgresql+asyncpg://user@127.0.0.1/db", "lastro uses psycopg"),
        ("sqlite+aiosqlite:///app.db", "lastro uses pysqlite3"),
    ],
    ids=["garbage", "empty", "mysql", "asyncpg", "aiosqlite"],
)
def test_unusable_urls_name_the_variable(url: str, fragment: str) -> None:
    """Garbage, another engine or another driver is a ConfigurationError naming DATABASE_URL."""
    with pytest.raises(ConfigurationError, match="DATABASE_URL") as raised:
        check_database_url(url)
    assert fragment in str(raised.value)


def test_a_password_is_hidden_even_in_a_url_that_does_not_parse() -> None:
    """A malformed URL is quoted back without the password it holds."""
    with pytest.raises(ConfigurationError) as raised:
        check_database_url("postgresql://user:s3cr@t@127.0.0.1:notaport/db")
    assert "s3cr" not in str(raised.value)
    assert "user:***@127.0.0.1" in str(raised.value)


def test_a_missing_postgres_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL without psycopg installed: the message says which extra installs it."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an environment without psycopg looks like
    with pytest.raises(ConfigurationError, match=r'pip install -e "\.\[postgres\]"'):
        check_database_url("postgresql://user@127.0.0.1/test")
