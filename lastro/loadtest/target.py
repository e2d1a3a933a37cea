"""The URL a run loads: loopback unless its host is named with --allow-host."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from lastro.errors import ConfigurationError

__all__ = ["Target", "check_target"]

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class Target:
    origin: str  # scheme://host:port, Locust's `host`
    path: str  # what the default scenario GETs
    hostname: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.hostname)


def is_loopback(hostname: str) -> bool:
    if hostname.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def check_target(url: str, allowed_hosts: Iterable[str] = ()) -> Target:
    """The parts of `url`; refused unless http(s), with a host that is loopback or in `allowed_hosts`.

    Names are compared as written, not resolved: `--allow-host` states which machine the person running the
    test means to load, and a name that happens to resolve to loopback is still named explicitly.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ConfigurationError(f"URL must be http://HOST[:PORT][/PATH] or https://..., not {url!r}")
    hostname = parts.hostname
    allowed = {host.lower() for host in allowed_hosts}
    if not is_loopback(hostname) and hostname.lower() not in allowed:
        raise ConfigurationError(
            f"{hostname} is not a loopback address: loadtest targets loopback unless the host is given "
            f"with --allow-host {hostname} (load only machines you run)"
        )
    port = port or (443 if parts.scheme == "https" else 80)
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(f"{parts.scheme}://{netloc}:{port}", path, hostname, port)
