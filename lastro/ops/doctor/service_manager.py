"""How long the service manager waits for the service to stop, read from the files `lastro deploy` writes
and from systemd itself.

- systemd: `TimeoutStopSec=` (or `TimeoutSec=`) in `systemd/*.service`, 90 s when unset (systemd's
  `DefaultTimeoutStopSec`); and, when this runs under systemd (`INVOCATION_ID`) or `systemctl` is here and
  knows a unit `SERVICE_NAME.service`, what `systemctl show -p TimeoutStopUSec` says.
- docker compose: `stop_grace_period` of the service's entry in `docker/compose.yaml`, 10 s when unset.
- NSSM: `AppStopMethodConsole` (milliseconds) in `nssm/deploy.ps1`, 1500 ms when unset: lastro stops on
  the console's Ctrl+C.

A file written by hand may not parse: it is then reported as unreadable, never guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastro.ops.doctor.context import Context
from lastro.ops.doctor.durations import parse_duration
from lastro.ops.doctor.findings import Finding
from lastro.ops.doctor.machine import Machine

__all__ = ["STOP_MARGIN", "StopTimeout", "check_stop_timeout", "stop_timeouts"]

# Past GRACEFUL_TIMEOUT the workers still run the application's shutdown and close their pools.
STOP_MARGIN = 5.0
SYSTEMD_DEFAULT = 90.0
COMPOSE_DEFAULT = 10.0
NSSM_DEFAULT = 1.5
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_OTHER_IMAGES = frozenset(
    {"postgres", "redis", "valkey", "nginx", "caddy", "traefik", "prometheus", "grafana"}
)


@dataclass(frozen=True)
class StopTimeout:
    source: str  # the file, or `systemctl show NAME`
    seconds: float | None  # None: the source is there but could not be read
    detail: str = ""  # why it could not be read, or where the value came from


def stop_timeouts(service: str, machine: Machine, deploy_dir: Path) -> list[StopTimeout]:
    found = [_systemd_unit(path) for path in sorted((deploy_dir / "systemd").glob("*.service"))]
    for name in COMPOSE_FILES:
        if (deploy_dir / "docker" / name).is_file():
            found += _compose(deploy_dir / "docker" / name, service)
            break
    if (deploy_dir / "nssm" / "deploy.ps1").is_file():
        found.append(_nssm(deploy_dir / "nssm" / "deploy.ps1"))
    running = _systemctl(service, machine)
    return found + ([running] if running else [])


def _systemd_unit(path: Path) -> StopTimeout:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return StopTimeout(str(path), None, f"cannot be read: {exc.__class__.__name__}")
    value, section, key = None, "", "TimeoutStopSec"
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith(("#", ";")):
            name, _, assigned = line.partition("=")
            if name.strip() in ("TimeoutStopSec", "TimeoutSec"):  # the later assignment wins, as in systemd
                value, key = assigned.strip(), name.strip()
    if value is None:
        return StopTimeout(str(path), SYSTEMD_DEFAULT, "TimeoutStopSec unset: systemd's default")
    seconds = parse_duration(value)
    if seconds is None:
        return StopTimeout(str(path), None, f"{key}={value} is not a systemd time span")
    return StopTimeout(str(path), seconds, f"{key}={value}")


def _compose(path: Path, service: str) -> list[StopTimeout]:
    import yaml  # type: ignore[import-untyped]  # PyYAML comes with uvicorn[standard]

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        services: dict[str, Any] = document["services"]
        entries = {str(name): dict(entry or {}) for name, entry in services.items()}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        return [
            StopTimeout(str(path), None, f"is not a compose file with services ({exc.__class__.__name__})")
        ]
    chosen = _lastro_services(entries, service)
    found = []
    for name, entry in chosen.items():
        source = f"{path} (service {name})"
        value = entry.get("stop_grace_period")
        if value is None:
            found.append(StopTimeout(source, COMPOSE_DEFAULT, "stop_grace_period unset: docker's default"))
            continue
        seconds = parse_duration(str(value))
        detail = (
            f"stop_grace_period: {value}"
            if seconds is not None
            else f"stop_grace_period: {value} is not a duration"
        )
        found.append(StopTimeout(source, seconds, detail))
    return found


def _lastro_services(entries: dict[str, dict[str, Any]], service: str) -> dict[str, dict[str, Any]]:
    """The entries that serve: the one named SERVICE_NAME; else, leaving out known database, cache and
    proxy images and one-shot steps (`restart: "no"`, a migration), those whose command runs `lastro serve`,
    else all that remain (an image whose CMD does)."""
    if service in entries:
        return {service: entries[service]}
    ours = {
        name: entry
        for name, entry in entries.items()
        if _image_name(entry) not in _OTHER_IMAGES and entry.get("restart") not in ("no", False)
    }
    serving = {
        name: entry
        for name, entry in ours.items()
        if "serve" in str(entry.get("command", "")) + str(entry.get("entrypoint", ""))
    }
    return serving or ours


def _image_name(entry: dict[str, Any]) -> str:
    """`docker.io/library/postgres:17-alpine` is `postgres`."""
    return str(entry.get("image", "")).rsplit("/", 1)[-1].partition(":")[0].partition("@")[0]


def _nssm(path: Path) -> StopTimeout:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return StopTimeout(str(path), None, f"cannot be read: {exc.__class__.__name__}")
    found = re.search(r"AppStopMethodConsole[\"']?\s+[\"']?(\$?[\w:]+)", text)
    if not found:
        return StopTimeout(str(path), NSSM_DEFAULT, "AppStopMethodConsole unset: NSSM's default 1500 ms")
    value = found.group(1)
    if value.startswith("$"):  # a script parameter or variable: its literal value, if it has one
        name = re.escape(value.removeprefix("$").split(":")[-1])
        assigned = re.search(rf"\${name}\s*=\s*(\d+)\b", text, re.IGNORECASE)
        if not assigned:
            return StopTimeout(str(path), None, f"AppStopMethodConsole {value} has no literal value here")
        value = assigned.group(1)
    if not value.isdigit():
        return StopTimeout(str(path), None, f"AppStopMethodConsole {value} is not milliseconds")
    return StopTimeout(str(path), int(value) / 1000, f"AppStopMethodConsole {value} ms")


def _systemctl(service: str, machine: Machine) -> StopTimeout | None:
    if "INVOCATION_ID" not in machine.environ and machine.which("systemctl") is None:
        return None
    unit = f"{service}.service"
    output = machine.run(["systemctl", "show", "--property=LoadState,TimeoutStopUSec", unit])
    if output is None:
        return None  # no systemd running here (a container), or systemctl refused
    properties = dict(line.partition("=")[::2] for line in output.splitlines())
    if properties.get("LoadState") != "loaded":
        return None
    value = properties.get("TimeoutStopUSec", "")
    return StopTimeout(f"systemctl show {unit}", parse_duration(value), f"TimeoutStopUSec={value}")


def check_stop_timeout(context: Context) -> list[Finding]:
    graceful = context.settings.GRACEFUL_TIMEOUT
    sources = stop_timeouts(context.settings.SERVICE_NAME, context.machine, context.deploy_dir)
    if not sources:
        return [
            Finding(
                "lastro.I073",
                "info",
                f"no service manager's stop timeout found (no files under {context.deploy_dir}, no systemd "
                "unit loaded): GRACEFUL_TIMEOUT was not checked against it",
                "generate the files with `lastro deploy systemd|docker|nssm`, or pass --deploy-dir",
            )
        ]
    found = []
    wanted = math.ceil(graceful + STOP_MARGIN)
    for source in sources:
        if source.seconds is None:
            found.append(
                Finding(
                    "lastro.W072",
                    "warning",
                    f"{source.source}: {source.detail}",
                    "write the stop timeout as the service manager documents it, or regenerate the file "
                    "with `lastro deploy`",
                )
            )
        elif source.seconds <= graceful:
            found.append(
                Finding(
                    "lastro.E070",
                    "error",
                    f"{source.source}: the service is killed after {source.seconds:g} s ({source.detail}), "
                    f"before GRACEFUL_TIMEOUT={graceful:g} s lets in-flight requests finish",
                    f"give the service manager at least {wanted} s (GRACEFUL_TIMEOUT + {STOP_MARGIN:g}), or "
                    "lower GRACEFUL_TIMEOUT",
                )
            )
        elif source.seconds < graceful + STOP_MARGIN:
            found.append(
                Finding(
                    "lastro.W071",
                    "warning",
                    f"{source.source}: {source.seconds:g} s to stop ({source.detail}) leaves less than "
                    f"{STOP_MARGIN:g} s past GRACEFUL_TIMEOUT={graceful:g} s for the shutdown",
                    f"give the service manager at least {wanted} s",
                )
            )
    return found
