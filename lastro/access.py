"""Who may read an operator's endpoint (`/health` detail, `/metrics`): a bearer token, or an address in
the allowed networks.

The token is compared in constant time. A request forwarded by a proxy nobody listed in `TRUSTED_PROXIES`
is not believed to come from the proxy's address: a reverse proxy on the same machine would otherwise open
the endpoint to the whole internet through loopback.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Mapping, Sequence

from pydantic import SecretStr
from starlette.responses import Response

from lastro.http.problem import ProblemResponse
from lastro.settings import Settings

__all__ = ["OperatorAccess"]


class OperatorAccess:
    def __init__(
        self,
        what: str,
        token: SecretStr | None,
        networks: Sequence[str],
        *,
        settings: tuple[str, str],  # the names of the token's and the networks' settings, for the refusals
        realm: str,
        trusted_proxies: Sequence[str],
    ) -> None:
        self.what = what
        self._realm = realm
        self._token = token.get_secret_value() if token else ""
        self._networks = tuple(networks)
        self._token_setting, self._networks_setting = settings
        self._proxied = bool(trusted_proxies)

    @classmethod
    def health(cls, settings: Settings) -> OperatorAccess:
        """Who reads the `/health` detail."""
        return cls(
            "the health detail",
            settings.HEALTH_TOKEN,
            settings.HEALTH_NETWORKS,
            settings=("HEALTH_TOKEN", "HEALTH_NETWORKS"),
            realm="health",
            trusted_proxies=settings.TRUSTED_PROXIES,
        )

    @classmethod
    def metrics(cls, settings: Settings, what: str = "/metrics") -> OperatorAccess:
        """Who reads `/metrics` and the dashboard's data (`what` names it in the refusals)."""
        return cls(
            what,
            settings.METRICS_TOKEN,
            settings.METRICS_NETWORKS,
            settings=("METRICS_TOKEN", "METRICS_NETWORKS"),
            realm="metrics",
            trusted_proxies=settings.TRUSTED_PROXIES,
        )

    def refusal(self, client: str | None, headers: Mapping[str, str]) -> Response | None:
        """None when the caller may read it, else the 401 or 403 problem+json that refuses it.

        `headers` are the request's, read without case (starlette's `Headers`).
        """
        if self._token and _bearer_matches(headers.get("authorization"), self._token):
            return None
        forwarded = not self._proxied and ("x-forwarded-for" in headers or "forwarded" in headers)
        if client is not None and not forwarded and _in_networks(client, self._networks):
            return None
        if self._token:
            return ProblemResponse(
                401,
                f"{self.what} needs Authorization: Bearer with the service's {self._token_setting}",
                headers={"WWW-Authenticate": f'Bearer realm="{self._realm}"'},
            )
        return ProblemResponse(403, f"{self.what} answers only clients in {self._networks_setting}")


def _bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").partition(" ")
    # Constant time: how long the comparison takes tells nothing about how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@functools.lru_cache(maxsize=16)
def _networks(
    networks: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def _in_networks(client: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:  # a Unix socket's path, or a test client's name
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(networks))
