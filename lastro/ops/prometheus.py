"""`lastro deploy prometheus`: a scrape configuration and alert rules for one service, from its settings.

Two files, from the templates in `templates/`: `prometheus.yml` scrapes the service's /metrics (job name
SERVICE_NAME, one target per `lastro serve`, the bearer token read from a file beside it when METRICS_TOKEN
is set) and loads `lastro-alerts.yml`, the alerts on what an operator would otherwise watch by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from lastro.errors import ConfigurationError
from lastro.ops.rendering import render, write_files
from lastro.settings import Settings, split_bind

__all__ = [
    "ALERT_RULES",
    "SCRAPE_CONFIG",
    "TOKEN_FILE",
    "check_target",
    "prometheus_files",
    "target_from_bind",
    "write_files",
]

SCRAPE_CONFIG = "prometheus.yml"
ALERT_RULES = "lastro-alerts.yml"
# Where prometheus.yml reads METRICS_TOKEN from, beside it: the token itself is never written by lastro.
TOKEN_FILE = "metrics.token"

_TARGET = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
# A server bound to every address is scraped on loopback, from the same machine.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}

_WITH_TOKEN = f"""\
    # /metrics wants `Authorization: Bearer <METRICS_TOKEN>`. Put the token, and nothing else, in
    # {TOKEN_FILE} beside this file, readable only by the user Prometheus runs as; never write it here:
    #   printf '%s' "$METRICS_TOKEN" > {TOKEN_FILE} && chmod 600 {TOKEN_FILE}
    authorization:
      type: Bearer
      credentials_file: {TOKEN_FILE}"""

_WITHOUT_TOKEN = """\
    # METRICS_TOKEN is not set: /metrics answers only the addresses in METRICS_NETWORKS (loopback by
    # default). To scrape from another machine, add its address to METRICS_NETWORKS, or set METRICS_TOKEN
    # and run `lastro deploy prometheus --force` again to send the token."""


def check_target(target: str) -> str:
    """`target` if it is `HOST:PORT` (`[IPv6]:PORT`) as Prometheus scrapes it; else ConfigurationError."""
    found = _TARGET.fullmatch(target)
    if not found or not 0 < int(found.group(1)) < 65536:
        raise ConfigurationError(
            f"--target must be HOST:PORT without a scheme or path, e.g. 10.0.0.5:8000 (got {target!r})"
        )
    return target


def target_from_bind(bind: str) -> str:
    """The address a Prometheus on the same machine scrapes a service listening on BIND."""
    host, port = split_bind(bind)
    if port == 0:
        raise ConfigurationError(
            f"BIND={bind} picks a free port at each start: give the address to scrape with --target HOST:PORT"
        )
    host = _LOOPBACK.get(host, f"[{host}]" if ":" in host else host)
    return f"{host}:{port}"


def prometheus_files(
    settings: Settings, targets: Sequence[str] = (), *, config_path: str = SCRAPE_CONFIG
) -> dict[str, str]:
    """File name -> text of the scrape configuration and the alert rules; `targets` default to BIND.

    `config_path` is where the configuration will be, as its comment shows the command that runs it.
    """
    scraped = [check_target(target) for target in targets] or [target_from_bind(settings.BIND)]
    # Escaped as in a JSON string: valid between double quotes in YAML and in PromQL alike.
    service = json.dumps(settings.SERVICE_NAME)[1:-1]
    return {
        SCRAPE_CONFIG: render(
            SCRAPE_CONFIG,
            service=service,
            config_path=config_path,
            authorization=_WITHOUT_TOKEN if settings.METRICS_TOKEN is None else _WITH_TOKEN,
            targets=json.dumps(scraped),
        ),
        ALERT_RULES: render(ALERT_RULES, service=service),
    }
