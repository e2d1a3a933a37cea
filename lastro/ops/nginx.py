"""`lastro deploy nginx`: a reverse proxy in front of one or several `lastro serve` instances.

One file for nginx's `http` block (`templates/nginx.conf`): an upstream of the instances with keep-alive
connections, the WebSocket upgrade for any route, X-Forwarded-For and -Proto for lastro to believe
(TRUSTED_PROXIES), retries of idempotent requests on the next instance, and timeouts derived from the
settings so that the two never disagree:

- nginx closes an idle upstream connection before lastro would (upstream `keepalive_timeout` shorter than
  KEEPALIVE), so it never sends a request on a connection lastro is closing at that moment;
- nginx waits for an answer longer than REQUEST_TIMEOUT, after which lastro answers 504 itself.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lastro.errors import ConfigurationError
from lastro.ops.rendering import render
from lastro.ops.service import service_name
from lastro.settings import Settings, split_bind

__all__ = [
    "NginxSite",
    "check_upstream",
    "nginx_files",
    "proxy_address",
    "proxy_trusted",
    "read_timeout",
    "trust_warning",
    "upstream_from_bind",
    "upstream_keepalive_timeout",
]

_UPSTREAM = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
_LISTEN = re.compile(r"(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):)?\d{1,5}")
_SERVER_NAME = re.compile(r"[\w.*~^$-]+(?: [\w.*~^$-]+)*")
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
# Seconds between the WebSocket pings uvicorn sends: an idle socket stays inside proxy_read_timeout.
WS_PING_INTERVAL = 20
MAX_FAILS = 3
FAIL_TIMEOUT = 5
KEEPALIVE_CONNECTIONS = 32  # idle connections to lastro each nginx worker keeps


@dataclass(frozen=True)
class NginxSite:
    """What nginx serves: the instances (HOST:PORT, default from BIND), its listen and server_name."""

    upstreams: Sequence[str] = ()
    listen: str = "80"
    server_name: str = "_"

    def __post_init__(self) -> None:
        for upstream in self.upstreams:
            check_upstream(upstream)
        if not _LISTEN.fullmatch(self.listen):
            raise ConfigurationError(f"--listen must be PORT or HOST:PORT, e.g. 80 (got {self.listen!r})")
        if not _SERVER_NAME.fullmatch(self.server_name):
            raise ConfigurationError(
                f"--server-name must be host names separated by spaces, e.g. api.example.com "
                f"(got {self.server_name!r})"
            )


def check_upstream(upstream: str) -> str:
    """`upstream` if it is HOST:PORT (`[IPv6]:PORT`); else ConfigurationError."""
    found = _UPSTREAM.fullmatch(upstream)
    if not found or not 0 < int(found.group(1)) < 65536:
        raise ConfigurationError(
            f"--upstream must be HOST:PORT without a scheme, e.g. 127.0.0.1:8000 (got {upstream!r})"
        )
    return upstream


def upstream_from_bind(bind: str) -> str:
    host, port = split_bind(bind)
    if port == 0:
        raise ConfigurationError(
            f"BIND={bind} picks a free port at each start: give each instance with --upstream HOST:PORT"
        )
    return f"{_LOOPBACK.get(host, f'[{host}]' if ':' in host else host)}:{port}"


def _seconds(value: float) -> str:
    """A duration as nginx reads it, in whole milliseconds unless whole seconds."""
    millis = math.floor(value * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def upstream_keepalive_timeout(settings: Settings) -> float | None:
    """Seconds nginx keeps an idle connection to lastro: shorter than KEEPALIVE by up to one second
    (half of it when shorter); None when lastro keeps none (KEEPALIVE=0)."""
    if settings.KEEPALIVE <= 0:
        return None
    return settings.KEEPALIVE - min(1.0, settings.KEEPALIVE / 2)


def read_timeout(settings: Settings) -> float:
    """proxy_read_timeout: 5 s past REQUEST_TIMEOUT (10 minutes without one), never under the WebSocket
    ping interval and a margin."""
    answer = settings.REQUEST_TIMEOUT + 5 if settings.REQUEST_TIMEOUT > 0 else 600.0
    return max(answer, WS_PING_INTERVAL + 10)


def proxy_trusted(settings: Settings, address: str) -> bool:
    """Whether lastro believes X-Forwarded-For from `address` (in TRUSTED_PROXIES)."""
    ip = ipaddress.ip_address(address.strip("[]"))
    return any(ip in ipaddress.ip_network(item, strict=False) for item in settings.TRUSTED_PROXIES)


def proxy_address(upstreams: Sequence[str]) -> str | None:
    """The address lastro sees nginx connect from, when every instance is on loopback; else None."""
    hosts = {upstream.rpartition(":")[0].strip("[]") for upstream in upstreams}
    if hosts <= {"localhost", "::1"} or all(host.startswith("127.") for host in hosts):
        return "::1" if hosts == {"::1"} else "127.0.0.1"
    return None


def nginx_files(settings: Settings, site: NginxSite) -> dict[str, str]:
    """File name -> text of `<SERVICE_NAME>.conf`."""
    name = service_name(settings)
    variable = re.sub(r"\W", "_", name)
    upstreams = list(site.upstreams) or [upstream_from_bind(settings.BIND)]
    servers = "\n".join(
        f"    server {upstream} max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT}s;" for upstream in upstreams
    )
    idle = upstream_keepalive_timeout(settings)
    if idle is None:
        keepalive = "    # KEEPALIVE=0: lastro closes every connection after its answer, so nginx keeps none."
    else:
        keepalive = (
            f"    # Idle connections to lastro kept by each nginx worker, closed after {_seconds(idle)}:\n"
            f"    # before lastro closes them (KEEPALIVE={settings.KEEPALIVE:g} s), never while it does.\n"
            f"    keepalive {KEEPALIVE_CONNECTIONS};\n"
            f"    keepalive_timeout {_seconds(idle)};\n"
            "    keepalive_requests 1000;"
        )
    trusted = ",".join(settings.TRUSTED_PROXIES) or "empty: set it to nginx's address"
    timeout = _seconds(read_timeout(settings))
    conf = render(
        "nginx.conf",
        service=name,
        variable=variable,
        servers=servers,
        keepalive=keepalive,
        max_fails=MAX_FAILS,
        fail_timeout=f"{FAIL_TIMEOUT}s",
        listen=site.listen,
        server_name=site.server_name,
        client_max_body_size=settings.MAX_BODY_BYTES,
        trusted=f"TRUSTED_PROXIES={trusted}",
        request_timeout=f"{settings.REQUEST_TIMEOUT:g} s" if settings.REQUEST_TIMEOUT > 0 else "0, none",
        read_timeout=timeout,
        tries=len(upstreams),
        next_upstream_timeout=timeout,
    )
    return {f"{name}.conf": conf}


def trust_warning(settings: Settings, upstreams: Sequence[str], address: str | None) -> str | None:
    """Why lastro would not believe nginx's X-Forwarded-For, and the setting that fixes it; or None."""
    upstreams = list(upstreams) or [upstream_from_bind(settings.BIND)]
    address = address or proxy_address(upstreams)
    if address is None:
        if settings.TRUSTED_PROXIES:
            return None
        return (
            "TRUSTED_PROXIES is empty: lastro will see nginx's address as every client's (one rate-limit "
            "budget for all); set TRUSTED_PROXIES to nginx's address, and pass it with --proxy-address to "
            "check it"
        )
    if proxy_trusted(settings, address):
        return None
    return (
        f"TRUSTED_PROXIES does not include {address}, the address nginx connects from: lastro will see it "
        f"as every client's address (one rate-limit budget for all); set TRUSTED_PROXIES={address}"
    )
