"""The `cluster` profile of `lastro deploy docker --cluster`: N instances of the app behind nginx, on the
postgres and redis services, parsed by the compose client and the site file checked by a real nginx."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lastro.errors import ConfigurationError
from lastro.ops.docker import COMPOSE, DockerDeploy, docker_files, plan_deploy
from lastro.ops.docker_cluster import (
    CLUSTER_SUBNET,
    NGINX_SITE,
    POSTGRES_CONNECTION_BUDGET,
    check_replicas,
    check_subnet,
    pool_sizes,
)
from tests.ops.test_docker import COMPOSE_CLIENT, needs_compose, settings, write_deploy
from tests.support.deploy_project import LOCK, make_project
from tests.support.nginx import NGINX, check, wrap

CLUSTER = DockerDeploy(target="shop:app", postgres=True, redis=True, replicas=3)
INSTANCES = ["app", "app-2", "app-3"]
ADDRESSES = ["10.201.0.11", "10.201.0.12", "10.201.0.13"]


def cluster_files(deploy: DockerDeploy = CLUSTER, **overrides: object) -> dict[str, str]:
    return docker_files(settings(**overrides), deploy)


def compose_of(deploy: DockerDeploy = CLUSTER, **overrides: object) -> dict[str, Any]:
    loaded = yaml.safe_load(cluster_files(deploy, **overrides)[COMPOSE])
    assert isinstance(loaded, dict)
    return loaded


def written_cluster(tmp_path: Path, replicas: int = 3) -> Path:
    """A project with the files of `lastro deploy docker --cluster` in deploy/docker, .env included."""
    project = make_project(tmp_path)
    deploy = plan_deploy(
        settings(), project, Path("deploy/docker"), target="shop.app:create_app", lock=LOCK, replicas=replicas
    )
    return write_deploy(project, deploy)


def test_the_cluster_implies_postgres_and_redis(tmp_path: Path) -> None:
    """plan_deploy with replicas turns on the postgres and redis services."""
    deploy = plan_deploy(settings(), make_project(tmp_path), Path("d"), target="a:b", lock=LOCK, replicas=3)
    assert deploy.postgres
    assert deploy.redis
    assert deploy.replicas == 3


def test_the_profile_holds_the_other_instances_and_nginx() -> None:
    """app serves in both modes; app-2, app-3 and nginx are in the `cluster` profile; the rest in none."""
    services = compose_of()["services"]
    assert set(services) == {"migrate", "app", "app-2", "app-3", "nginx", "postgres", "redis"}
    profiled = {name for name, service in services.items() if "profiles" in service}
    assert profiled == {"app-2", "app-3", "nginx"}
    assert all(services[name]["profiles"] == ["cluster"] for name in profiled)


def test_every_instance_is_the_app_at_a_fixed_address() -> None:
    """app-2 and app-3 are app (image, command, health check, limits, volumes, depends_on) at addresses of
    their own, and publish no port."""
    services = compose_of()["services"]
    app = services["app"]
    ignored = {"ports", "profiles", "networks"}
    for name, address in zip(INSTANCES, ADDRESSES, strict=True):
        service = services[name]
        assert service["networks"] == {"default": {"ipv4_address": address}}
        assert {key: value for key, value in service.items() if key not in ignored} == {
            key: value for key, value in app.items() if key not in ignored
        }
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["app-2"]["ports"] == services["app-3"]["ports"] == []


def test_the_settings_describe_the_cluster() -> None:
    """INSTANCES=3, PostgreSQL and Redis URLs, and the compose network as TRUSTED_PROXIES, for every one."""
    environment = compose_of()["x-settings"]
    assert environment["INSTANCES"] == "3"
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["DATABASE_URL"].endswith("@postgres:5432/shop")
    assert environment["TRUSTED_PROXIES"] == CLUSTER_SUBNET


def test_each_instance_has_its_own_control_directory() -> None:
    """CONTROL_DIR is off the shared data volume, so that draining or reloading one instance leaves the
    others alone."""
    compose = compose_of()
    control = compose["x-settings"]["CONTROL_DIR"]
    mounts = [volume.split(":")[1] for volume in compose["services"]["app"]["volumes"]]
    assert not any(control == mount or control.startswith(f"{mount}/") for mount in mounts)


@pytest.mark.parametrize(("replicas", "workers"), [(2, 1), (3, 2), (3, 4), (9, 2), (5, 5)])
def test_the_pools_fit_the_connection_budget(replicas: int, workers: int) -> None:
    """Every worker of every instance, its health probe included, stays within the budget of
    max_connections=100; compose.yaml carries the sizes."""
    size, overflow = pool_sizes(replicas, workers)
    assert size >= 1
    assert replicas * workers * (size + overflow + 1) <= POSTGRES_CONNECTION_BUDGET
    deploy = DockerDeploy(target="a:b", postgres=True, redis=True, replicas=replicas, workers=workers)
    environment = compose_of(deploy)["x-settings"]
    assert (environment["DB_POOL_SIZE"], environment["DB_MAX_OVERFLOW"]) == (str(size), str(overflow))


def test_a_cluster_past_the_connection_budget_is_refused() -> None:
    """9 instances of 8 workers cannot each hold a pool: ConfigurationError naming both."""
    with pytest.raises(ConfigurationError, match="--replicas 9 with WORKERS=8"):
        pool_sizes(9, 8)


def test_nginx_waits_for_every_instance_and_mounts_the_site() -> None:
    """nginx: a pinned official image, the site file in place of the image's own, healthy instances first,
    a health check and a restart policy."""
    nginx = compose_of()["services"]["nginx"]
    repository, _, tag = nginx["image"].partition(":")
    assert repository == "nginx"
    assert tag[:1].isdigit()
    assert nginx["volumes"] == [f"./{NGINX_SITE}:/etc/nginx/conf.d/default.conf:ro"]
    assert nginx["depends_on"] == {name: {"condition": "service_healthy"} for name in INSTANCES}
    assert nginx["healthcheck"]["test"][0] == "CMD"
    assert nginx["restart"] == "unless-stopped"
    assert nginx["ports"] == ["80:80"]


def test_the_network_keeps_the_fixed_addresses_out_of_the_dynamic_range() -> None:
    """The default network is the subnet; the addresses compose hands out come from a range that holds
    none of the instances'."""
    (config,) = compose_of()["networks"]["default"]["ipam"]["config"]
    subnet, dynamic = ipaddress.ip_network(config["subnet"]), ipaddress.ip_network(config["ip_range"])
    assert str(subnet) == CLUSTER_SUBNET
    assert dynamic.subnet_of(subnet)
    for address in map(ipaddress.ip_address, ADDRESSES):
        assert address in subnet
        assert address not in dynamic


def test_the_site_sends_to_every_instance_and_trusts_nothing_else() -> None:
    """The site file is `lastro deploy nginx`'s, with one upstream server per instance, on the app's port."""
    site = cluster_files(BIND="0.0.0.0:9000")[NGINX_SITE]
    servers = [line.split()[1] for line in site.splitlines() if line.strip().startswith("server 10.")]
    assert servers == [f"{address}:9000" for address in ADDRESSES]
    assert "proxy_next_upstream_tries 3;" in site
    assert f"TRUSTED_PROXIES={CLUSTER_SUBNET}" in site
    assert "listen 80;" in site


def test_another_subnet_moves_every_address() -> None:
    """--subnet moves the network, the fixed addresses, TRUSTED_PROXIES and the site's upstream together."""
    deploy = DockerDeploy(target="a:b", postgres=True, redis=True, replicas=2, subnet="10.99.8.0/24")
    files = cluster_files(deploy)
    compose = yaml.safe_load(files[COMPOSE])
    assert compose["x-settings"]["TRUSTED_PROXIES"] == "10.99.8.0/24"
    assert compose["services"]["app-2"]["networks"]["default"]["ipv4_address"] == "10.99.8.12"
    assert "server 10.99.8.11:8000 " in files[NGINX_SITE]
    assert "10.201." not in files[COMPOSE] + files[NGINX_SITE]


@pytest.mark.parametrize("value", ["1", "0", "10", "three", "-3", ""])
def test_a_bad_replica_count_is_refused(value: str) -> None:
    """--replicas is 2 to 9."""
    with pytest.raises(ConfigurationError, match="--replicas must be a whole number from 2 to 9"):
        check_replicas(value)


@pytest.mark.parametrize(
    "value", ["8.8.8.0/24", "10.0.0.0/8", "10.1.2.0/28", "fd00::/64", "10.1.2.3/24", "x"]
)
def test_a_bad_subnet_is_refused(value: str) -> None:
    """--subnet is a private IPv4 network of /16 to /26, written as a network."""
    with pytest.raises(ConfigurationError, match="--subnet must be a private IPv4 network"):
        check_subnet(value)


@pytest.mark.skipif(NGINX is None, reason="no nginx: `apt-get install -y nginx-light`")
@pytest.mark.parametrize("replicas", [2, 3])
def test_nginx_accepts_the_site(tmp_path: Path, replicas: int) -> None:
    """`nginx -t` accepts the site file in an http block, as the image's nginx.conf includes it."""
    directory = written_cluster(tmp_path, replicas)
    result = check(wrap(tmp_path, directory / NGINX_SITE))
    assert result.returncode == 0, result.stderr


@needs_compose
def test_the_compose_client_accepts_the_cluster(tmp_path: Path) -> None:
    """`docker compose --profile cluster config` parses the file with its .env, offline, and keeps the
    profile, the merged instances and the network."""
    directory = written_cluster(tmp_path)
    assert COMPOSE_CLIENT is not None
    result = subprocess.run(
        [*COMPOSE_CLIENT, "-f", COMPOSE, "--profile", "cluster", "config"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(INSTANCES) | {"nginx", "postgres", "redis", "migrate"} == set(services)
    for name, address in zip(INSTANCES, ADDRESSES, strict=True):
        environment = services[name]["environment"]
        assert environment["INSTANCES"] == "3"
        assert environment["TRUSTED_PROXIES"] == CLUSTER_SUBNET
        assert environment["SECRET_KEY"]  # from .env
        assert services[name]["networks"]["default"]["ipv4_address"] == address
        assert services[name]["image"] == "shop:latest"
    assert services["nginx"]["profiles"] == ["cluster"]
    assert config["networks"]["default"]["ipam"]["config"][0]["subnet"] == CLUSTER_SUBNET
