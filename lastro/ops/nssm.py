"""`lastro deploy nssm`: a PowerShell script that runs the service as a Windows service with NSSM.

`deploy.ps1` (`templates/deploy.ps1`) installs, starts, stops, updates and removes the service, with the
seeds' `-Workers` and `-Port`. Windows has no SIGTERM or SIGHUP, so the stop is NSSM's Ctrl+C, waited for
longer than GRACEFUL_TIMEOUT; a stop drains first (`lastro drain`: /health/ready 503 for a balancer), and an
update is `lastro reload`, the rolling restart SIGHUP gives on Linux, so that no request is refused.
"""

from __future__ import annotations

import re

from lastro.errors import ConfigurationError
from lastro.ops.rendering import render
from lastro.ops.service import SHUTDOWN_MARGIN, ServeCommand, service_name, stop_timeout
from lastro.settings import Settings, split_bind

__all__ = ["SCRIPT", "nssm_files", "powershell_string"]

SCRIPT = "deploy.ps1"
_WINDOWS_PATH = re.compile(r"(?:[A-Za-z]:\\|\\\\)[^\"<>|?*\r\n]*")


def powershell_string(value: object) -> str:
    """`value` as a single-quoted PowerShell string: nothing in it is expanded."""
    return "'" + str(value).replace("'", "''") + "'"


def _settings_lines(settings: Settings) -> list[str]:
    values: dict[str, object] = {
        "SERVICE_NAME": settings.SERVICE_NAME,
        "DATABASE_URL": settings.DATABASE_URL,
        "MIGRATIONS_DIR": settings.MIGRATIONS_DIR,
        "REDIS_URL": settings.REDIS_URL or "",
        "LOG_LEVEL": settings.LOG_LEVEL,
        "GRACEFUL_TIMEOUT": f"{settings.GRACEFUL_TIMEOUT:g}",
        "TIMEOUT": f"{settings.TIMEOUT:g}",
        "KEEPALIVE": f"{settings.KEEPALIVE:g}",
        "REQUEST_TIMEOUT": f"{settings.REQUEST_TIMEOUT:g}",
        "MAX_CONNECTIONS": settings.MAX_CONNECTIONS,
        "MAX_BODY_BYTES": settings.MAX_BODY_BYTES,
        "MAX_REQUESTS": settings.MAX_REQUESTS,
        "MAX_REQUESTS_JITTER": settings.MAX_REQUESTS_JITTER,
        "TRUSTED_PROXIES": ",".join(settings.TRUSTED_PROXIES),
        "ALLOWED_HOSTS": ",".join(settings.ALLOWED_HOSTS),
    }
    return [f"        {name} = {powershell_string(value)}" for name, value in values.items() if value != ""]


def nssm_files(settings: Settings, command: ServeCommand, directory: str | None = None) -> dict[str, str]:
    """File name -> text of `deploy.ps1`; `directory` is AppDirectory on the server."""
    name = service_name(settings)
    directory = directory or f"C:\\srv\\{name}"
    if not _WINDOWS_PATH.fullmatch(directory):
        raise ConfigurationError(
            f"--directory must be an absolute Windows path, e.g. C:\\srv\\{name} (got {directory!r})"
        )
    host, port = split_bind(settings.BIND)
    if port == 0:
        raise ConfigurationError(
            f"BIND={settings.BIND} picks a free port at each start: a service needs a fixed one, e.g. "
            "BIND=127.0.0.1:8000"
        )
    script = render(
        SCRIPT,
        service=name,
        target=command.target,
        workers=settings.WORKERS,
        port=port,
        host=host,
        directory=directory.replace("'", "''"),
        serve_args=" ".join(command.arguments()).replace("'", "''"),
        upgrade_args=", ".join(powershell_string(arg) for arg in command.upgrade_arguments()),
        graceful_timeout=f"{settings.GRACEFUL_TIMEOUT:g}",
        shutdown_margin=SHUTDOWN_MARGIN,
        stop_milliseconds=stop_timeout(settings) * 1000,
        settings="\n".join(_settings_lines(settings)),
    )
    return {SCRIPT: script}
