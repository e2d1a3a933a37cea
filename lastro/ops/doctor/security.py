"""Settings that are unsafe to deploy: the production refusals of `lastro.settings` (what `lastro serve`
would refuse), what production allows but should not expose, and several instances without a shared store."""

from __future__ import annotations

import ipaddress

from lastro.ops.doctor.context import Context
from lastro.ops.doctor.findings import Finding, split_problem

__all__ = ["check_instances", "check_settings"]


def _everywhere(networks: list[str]) -> bool:
    return any(ipaddress.ip_network(network, strict=False).prefixlen == 0 for network in networks)


def check_settings(context: Context) -> list[Finding]:
    settings = context.settings
    found = []
    for problem in settings.unsafe_problems():
        found.append(Finding("lastro.E001", "error", *split_problem(problem)))
    # Checked as if in production: a deploy is, and development's values are what production refuses.
    for problem in settings.production_problems():
        if settings.is_production:
            found.append(Finding("lastro.E001", "error", *split_problem(problem)))
        else:
            message, fix = split_problem(problem)
            found.append(Finding("lastro.W001", "warning", f"{message} (refused once in production)", fix))
    if not settings.is_production:
        found.append(
            Finding(
                "lastro.W002",
                "warning",
                "ENVIRONMENT=development: the production refusals are off and /docs is served",
                "set ENVIRONMENT=production on a deployed service",
            )
        )
    elif settings.docs_enabled:
        found.append(
            Finding(
                "lastro.W003",
                "warning",
                "DOCS_ENABLED=true serves /docs and /openapi.json in production: the whole API to anyone",
                "set DOCS_ENABLED=false, or leave it unset (off in production)",
            )
        )
    if settings.is_production and "*" in settings.ALLOWED_HOSTS:
        found.append(
            Finding(
                "lastro.W004",
                "warning",
                "ALLOWED_HOSTS=* answers any Host header: links built from it (Location) can point elsewhere",
                "set ALLOWED_HOSTS to the names the service answers to, e.g. ALLOWED_HOSTS=api.example.com",
            )
        )
    if _everywhere(settings.TRUSTED_PROXIES):
        found.append(
            Finding(
                "lastro.W005",
                "warning",
                "TRUSTED_PROXIES trusts every address: any client can forge X-Forwarded-For and so its IP, "
                "and pass the per-IP rate limits",
                "set TRUSTED_PROXIES to the proxies' addresses, e.g. TRUSTED_PROXIES=127.0.0.1,10.0.0.5",
            )
        )
    if settings.METRICS_ENABLED and _everywhere(settings.METRICS_NETWORKS):
        found.append(
            Finding(
                "lastro.W006",
                "warning",
                "METRICS_NETWORKS opens /metrics (routes, error rates, pool use) to every address",
                "set METRICS_NETWORKS to the scraper's network, e.g. 10.0.0.0/8, or use METRICS_TOKEN",
            )
        )
    if _everywhere(settings.HEALTH_NETWORKS):
        found.append(
            Finding(
                "lastro.W007",
                "warning",
                "HEALTH_NETWORKS opens /health detail (versions, database, disk) to every address",
                "set HEALTH_NETWORKS to the monitor's network, e.g. 10.0.0.0/8, or use HEALTH_TOKEN",
            )
        )
    if settings.HEALTH_TOKEN is None:
        found.append(
            Finding(
                "lastro.I008",
                "info",
                f"HEALTH_TOKEN is unset: /health detail answers only HEALTH_NETWORKS "
                f"({','.join(settings.HEALTH_NETWORKS) or 'none'})",
                "for a monitor elsewhere, set HEALTH_TOKEN to the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
            )
        )
    if settings.is_production and settings.HSTS_SECONDS == 0:
        found.append(
            Finding(
                "lastro.I009",
                "info",
                "HSTS_SECONDS=0: browsers are not told to keep to https",
                "set HSTS_SECONDS=31536000 once the service is served over https only",
            )
        )
    return found


def check_instances(context: Context) -> list[Finding]:
    """Several `lastro serve` instances share limits, caches and events only through Redis and a database
    server. Without REDIS_URL it is a refusal of the settings, reported by `check_settings` (lastro.E001,
    lastro.W001 in development)."""
    instances = context.settings.INSTANCES
    if instances <= 1 or not context.is_sqlite:
        return []
    return [
        Finding(
            "lastro.E040",
            "error",
            f"INSTANCES={instances} with a SQLite DATABASE_URL: each machine would have a database of its "
            "own, or share one file over the network, which SQLite does not support",
            "set DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/NAME, or INSTANCES=1",
        )
    ]
