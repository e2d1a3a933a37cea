"""The settings checks: lastro's production refusals reported, and what production allows but should not."""

from __future__ import annotations

import pytest

from tests.ops.doctor.conftest import Doctor


def test_a_clean_deploy_has_nothing_to_say(doctor: Doctor) -> None:
    """Production settings with a key, tokens, hosts and a backup schedule, on a roomy machine: no finding."""
    assert doctor.findings() == []


def test_a_production_refusal_is_an_error_with_its_fix(doctor: Doctor) -> None:
    """A SECRET_KEY `lastro serve` would refuse is lastro.E001: the refusal's text, split at its fix."""
    finding = doctor.one("lastro.E001", {"SECRET_KEY": "short"})
    assert finding.severity == "error"
    assert finding.message == "SECRET_KEY must be at least 32 characters in production"
    assert finding.fix.startswith("set SECRET_KEY to the output of")


def test_debug_in_production_is_refused(doctor: Doctor) -> None:
    """DEBUG=true in production is reported through the same refusal."""
    assert "DEBUG" in doctor.one("lastro.E001", {"DEBUG": "true"}).message


def test_credentials_to_any_origin_are_refused_in_every_environment(doctor: Doctor) -> None:
    """CORS_ORIGINS=* with credentials (refused everywhere) is an error even in development."""
    settings = {"ENVIRONMENT": "development", "CORS_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"}
    assert "CORS_ALLOW_CREDENTIALS" in doctor.one("lastro.E001", settings).message


def test_development_is_a_warning_and_its_refusals_too(doctor: Doctor) -> None:
    """ENVIRONMENT=development is lastro.W002; what production would refuse comes as lastro.W001."""
    ids = doctor.ids({"ENVIRONMENT": "development", "SECRET_KEY": "short"})
    assert "lastro.W002" in ids
    assert "lastro.W001" in ids
    assert "lastro.E001" not in ids


@pytest.mark.parametrize(
    ("finding", "settings"),
    [
        ("lastro.W003", {"DOCS_ENABLED": "true"}),
        ("lastro.W004", {"ALLOWED_HOSTS": "*"}),
        ("lastro.W005", {"TRUSTED_PROXIES": "0.0.0.0/0"}),
        ("lastro.W005", {"TRUSTED_PROXIES": "127.0.0.1,::/0"}),
        ("lastro.W006", {"METRICS_NETWORKS": "0.0.0.0/0"}),
        ("lastro.W007", {"HEALTH_NETWORKS": "::/0"}),
        ("lastro.I008", {"HEALTH_TOKEN": None}),
        ("lastro.I009", {"HSTS_SECONDS": "0"}),
    ],
    ids=["docs", "hosts", "proxies", "proxies-v6", "metrics", "health", "health-token", "hsts"],
)
def test_what_production_allows_but_should_not_expose(
    doctor: Doctor, finding: str, settings: dict[str, str | None]
) -> None:
    """Each exposure is its own finding, with a fix naming the setting."""
    found = doctor.one(finding, settings)
    setting = next(iter(settings))
    assert setting in found.message + found.fix


@pytest.mark.parametrize(
    "settings",
    [
        {"TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1"},
        {"METRICS_NETWORKS": "0.0.0.0/0", "METRICS_ENABLED": "false"},
        {"HEALTH_NETWORKS": "10.0.0.0/8"},
        {"DOCS_ENABLED": "false"},
    ],
    ids=["proxies", "metrics-off", "health", "docs-off"],
)
def test_narrow_values_are_not_reported(doctor: Doctor, settings: dict[str, str]) -> None:
    """Networks narrower than everything, and /metrics turned off, are fine."""
    assert doctor.findings(settings) == []


def test_several_instances_on_sqlite_is_an_error(doctor: Doctor) -> None:
    """INSTANCES=2 with a SQLite file (and Redis): lastro.E040, naming PostgreSQL as the fix."""
    finding = doctor.one("lastro.E040", {"INSTANCES": "2", "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert "DATABASE_URL=postgresql://" in finding.fix


def test_several_instances_without_redis_is_reported_once(doctor: Doctor) -> None:
    """The refusal says it, once: lastro.E001 in production, lastro.W001 in development."""
    postgres = {"INSTANCES": "2", "DATABASE_URL": "postgresql://app@db:5432/app"}
    production = doctor.findings(postgres)
    assert [finding.id for finding in production] == ["lastro.E001"]
    assert "REDIS_URL" in production[0].message
    development = doctor.findings({**postgres, "ENVIRONMENT": "development"})
    assert [finding.id for finding in development if "REDIS_URL" in finding.message] == ["lastro.W001"]


def test_several_instances_with_redis_and_postgresql_are_fine(doctor: Doctor) -> None:
    """The shared setup: nothing to report."""
    settings = {
        "INSTANCES": "3",
        "DATABASE_URL": "postgresql://app@db:5432/app",
        "REDIS_URL": "redis://cache:6379/0",
    }
    assert doctor.findings(settings) == []
