"""The `cluster` profile of `lastro deploy docker --cluster`: several instances behind nginx, in compose.yaml.

`docker compose up` runs `app` alone, as without the option; `docker compose --profile cluster up` adds
`app-2` ... `app-N` (the same service, through a YAML merge of `app`) and nginx in front of the N. They share
the postgres and redis services, the release step and the volumes.

nginx reaches each instance at a fixed address on the compose network, whose subnet is fixed too: nginx
resolves an upstream's name once, at start-up, and Docker's DNS may hand a recreated container a new
address, so names would go stale. The same subnet is TRUSTED_PROXIES, for lastro to believe nginx's
X-Forwarded-For. The site file is `lastro deploy nginx`'s own (`nginx.py`), mounted into the official image.
"""

from __future__ import annotations

import ipaddress
import re

from lastro.db.pools import POSTGRES_CONNECTION_BUDGET, postgres_pool
from lastro.errors import ConfigurationError
from lastro.ops.nginx import NginxSite, nginx_files
from lastro.ops.rendering import render
from lastro.settings import Settings

__all__ = [
    "CLUSTER_SUBNET",
    "DEFAULT_REPLICAS",
    "MAX_REPLICAS",
    "NGINX_SITE",
    "check_replicas",
    "check_subnet",
    "cluster_app_network",
    "cluster_network",
    "cluster_services",
    "cluster_settings",
    "cluster_usage",
    "nginx_site",
    "node_address",
    "pool_sizes",
]

DEFAULT_REPLICAS = 3
MAX_REPLICAS = 9
# Outside the pools Docker picks networks from (172.17-31.x, 192.168.x): no clash with networks it makes.
CLUSTER_SUBNET = "10.201.0.0/24"
NGINX_SITE = "nginx-site.conf"
NGINX_IMAGE = "nginx:1.28-alpine"
_WHOLE = re.compile(r"[0-9]{1,3}")


def check_replicas(value: str | int) -> int:
    """The instance count of the cluster profile, 2 to MAX_REPLICAS; else ConfigurationError."""
    text = str(value).strip()
    if not _WHOLE.fullmatch(text) or not 2 <= int(text) <= MAX_REPLICAS:
        raise ConfigurationError(
            f"--replicas must be a whole number from 2 to {MAX_REPLICAS}, e.g. {DEFAULT_REPLICAS} "
            f"(got {value!r})"
        )
    return int(text)


def check_subnet(value: str) -> str:
    """`value` as a private IPv4 network of /16 to /26 (room for the fixed addresses and the rest)."""
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        network = None
    if (
        not isinstance(network, ipaddress.IPv4Network)
        or not network.is_private
        or not 16 <= network.prefixlen <= 26
    ):
        raise ConfigurationError(
            f"--subnet must be a private IPv4 network from /16 to /26 that no other network of the host "
            f"uses, e.g. {CLUSTER_SUBNET} (got {value!r})"
        )
    return str(network)


def node_address(subnet: str, number: int) -> str:
    """The fixed address of instance `number` (1 is `app`)."""
    return str(ipaddress.ip_network(subnet)[10 + number])


def pool_sizes(replicas: int, workers: int) -> tuple[int, int]:
    """(DB_POOL_SIZE, DB_MAX_OVERFLOW) per worker, such that every worker of every instance, with its health
    probe's connection, stays within POSTGRES_CONNECTION_BUDGET; ConfigurationError when none would."""
    per_worker = POSTGRES_CONNECTION_BUDGET // (replicas * workers) - 1  # one is the health probe's
    if per_worker < 2:
        raise ConfigurationError(
            f"--replicas {replicas} with WORKERS={workers}: {replicas * workers} workers would need at least "
            f"{3 * replicas * workers} PostgreSQL connections, over the {POSTGRES_CONNECTION_BUDGET} of the "
            "postgres service: lower --replicas or WORKERS"
        )
    return postgres_pool(workers, replicas)


def cluster_settings(replicas: int, workers: int, subnet: str) -> str:
    """The lines x-settings gains: INSTANCES, TRUSTED_PROXIES and the pool sizes."""
    size, overflow = pool_sizes(replicas, workers)
    text = render(
        "compose-cluster.yaml",
        replicas=replicas,
        subnet=subnet,
        workers=workers,
        size=size,
        overflow=overflow,
        total=replicas * workers * (size + overflow + 1),
        budget=POSTGRES_CONNECTION_BUDGET,
    )
    return "\n" + text.rstrip("\n")


def cluster_usage(replicas: int) -> str:
    """The line compose.yaml's header gains: how to start the profile."""
    names = ", ".join(f"app-{number}" for number in range(2, replicas + 1))
    return f"\n#   docker compose --profile cluster up -d --build   the same, with {names} and nginx in front"


def cluster_app_network(subnet: str) -> str:
    """What `app` gains: its fixed address, for nginx."""
    return (
        "\n    # Its fixed address, where nginx (the cluster profile) reaches it."
        f"\n    networks:\n      default:\n        ipv4_address: {node_address(subnet, 1)}"
    )


def cluster_services(replicas: int, subnet: str, *, stop_grace_period: str) -> str:
    """The services of the `cluster` profile: app-2 ... app-N, then nginx."""
    nodes = "".join(
        "\n"
        + render("compose-node.yaml", number=number, replicas=replicas, address=node_address(subnet, number))
        for number in range(2, replicas + 1)
    )
    depends = "".join(
        f"\n      {name}:\n        condition: service_healthy"
        for name in ["app", *(f"app-{number}" for number in range(2, replicas + 1))]
    )
    return (
        nodes
        + "\n"
        + render(
            "compose-nginx.yaml",
            replicas=replicas,
            image=NGINX_IMAGE,
            site=NGINX_SITE,
            stop_grace_period=stop_grace_period,
            depends=depends,
        )
    )


def cluster_network(subnet: str) -> str:
    """The top-level networks: the default network on a fixed subnet, whose upper half is for the
    containers without a fixed address."""
    network = ipaddress.ip_network(subnet)
    dynamic = list(network.subnets(prefixlen_diff=1))[1]
    return "\n" + render("compose-network.yaml", subnet=network, ip_range=dynamic).rstrip("\n")


def nginx_site(settings: Settings, replicas: int, subnet: str, port: int) -> str:
    """`lastro deploy nginx`'s site for the N instances, as the nginx service mounts it."""
    trusting = settings.model_copy(update={"TRUSTED_PROXIES": [subnet]})
    upstreams = [f"{node_address(subnet, number)}:{port}" for number in range(1, replicas + 1)]
    (text,) = nginx_files(trusting, NginxSite(upstreams, "80", "_")).values()
    return (
        "# Mounted by compose.yaml's nginx service (the cluster profile) as /etc/nginx/conf.d/default.conf,\n"
        "# in place of the image's own site. `lastro deploy docker --cluster --force` writes it again, with\n"
        "# compose.yaml: the addresses below are the instances' fixed addresses there.\n" + text
    )
