"""compose.yaml as `lastro deploy docker` writes it: parsed by the compose client with its .env, and held to
what `lastro serve` needs (restart, signals, health, grace period, limits, the release step)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lastro.errors import ConfigurationError
from lastro.ops.docker import (
    COMPOSE,
    DOCKERIGNORE,
    HEALTHCHECK,
    STOP_MARGIN,
    SUPERVISOR_MB,
    WORKER_MB,
    DockerDeploy,
    docker_files,
    plan_deploy,
)
from lastro.ops.docker_env import env_file_text
from lastro.ops.prometheus import write_files
from lastro.settings import Settings, load_settings
from tests.support.deploy_project import LOCK, make_project

SERVE = DockerDeploy(target="shop.app:create_app", factory=True)


def compose_client() -> list[str] | None:
    """`docker compose` when the plugin is there, else Debian's docker-compose; both parse offline."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


COMPOSE_CLIENT = compose_client()
needs_compose = pytest.mark.skipif(
    COMPOSE_CLIENT is None,
    reason="neither `docker compose` nor docker-compose: `apt-get install -y docker-compose` (.ci/run does)",
)


def settings(**overrides: object) -> Settings:
    return load_settings(SERVICE_NAME="shop", **overrides)


def compose_of(deploy: DockerDeploy = SERVE, **overrides: object) -> dict[str, Any]:
    loaded = yaml.safe_load(docker_files(settings(**overrides), deploy)[COMPOSE])
    assert isinstance(loaded, dict)
    return loaded


def written_project(tmp_path: Path, *flags: str) -> Path:
    """A project with its files from `lastro deploy docker` in deploy/docker, .env included."""
    project = make_project(tmp_path)
    deploy = plan_deploy(
        settings(),
        project,
        Path("deploy/docker"),
        target="shop.app:create_app",
        lock=LOCK,
        postgres="--postgres" in flags,
        redis="--redis" in flags,
    )
    return write_deploy(project, deploy)


def write_deploy(project: Path, deploy: DockerDeploy) -> Path:
    """The files of `deploy` written in the project's deploy/docker, .env included; the directory."""
    directory = project / "deploy" / "docker"
    write_files(directory, docker_files(settings(), deploy))
    env = env_file_text(None, settings(), postgres=deploy.postgres)
    assert env is not None
    (directory / ".env").write_text(env)
    return directory


def compose_config(directory: Path) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_CLIENT is not None
    return subprocess.run(
        [*COMPOSE_CLIENT, "-f", COMPOSE, "config"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_app_restarts_and_is_stopped_after_graceful_timeout() -> None:
    """restart: unless-stopped, SIGTERM, and a stop_grace_period past GRACEFUL_TIMEOUT by the margin."""
    app = compose_of(GRACEFUL_TIMEOUT="42.5")["services"]["app"]
    assert app["restart"] == "unless-stopped"
    assert app["stop_signal"] == "SIGTERM"
    grace = int(app["stop_grace_period"].removesuffix("s"))
    assert grace > 42.5
    assert grace == 43 + STOP_MARGIN
    assert app["environment"]["GRACEFUL_TIMEOUT"] == "42.5"


@pytest.mark.parametrize("workers", [1, 2, 6])
def test_limits_follow_the_worker_count(workers: int) -> None:
    """One CPU per worker, and memory for the supervisor plus each worker; WORKERS is fixed to match."""
    app = compose_of(DockerDeploy(target="shop:app", workers=workers))["services"]["app"]
    limits = app["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) == workers
    assert limits["memory"] == f"{SUPERVISOR_MB + workers * WORKER_MB}M"
    assert app["environment"]["WORKERS"] == str(workers)


def test_the_compose_healthcheck_is_the_images() -> None:
    """The app's healthcheck runs the same Python probe, with a start period."""
    check = compose_of()["services"]["app"]["healthcheck"]
    assert check["test"] == ["CMD", "python", "-c", HEALTHCHECK]
    assert check["start_period"] == "30s"
    assert {"interval", "timeout", "retries"} <= set(check)


def test_the_app_waits_for_the_migrations_and_keeps_data_on_volumes() -> None:
    """The app starts once migrate completed; both mount the data volume; .env is the env_file."""
    compose = compose_of()
    app, migrate = compose["services"]["app"], compose["services"]["migrate"]
    assert app["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert "data:/app/var" in app["volumes"]
    assert "data:/app/var" in migrate["volumes"]
    assert "backups:/app/backups" in app["volumes"]
    assert app["env_file"] == migrate["env_file"] == ".env"
    assert migrate["command"] == ["lastro", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert app["environment"]["DATABASE_URL"] == "sqlite:////app/var/shop.db"
    assert set(compose["services"]) == {"app", "migrate"}
    assert set(compose["volumes"]) == {"data", "backups"}


def test_postgres_and_redis_are_wired_and_waited_for() -> None:
    """With both, DATABASE_URL and REDIS_URL name the services, which the app waits for healthy."""
    compose = compose_of(DockerDeploy(target="shop:app", postgres=True, redis=True))
    services = compose["services"]
    environment = services["app"]["environment"]
    assert environment["DATABASE_URL"].startswith("postgresql+psycopg://shop:${POSTGRES_PASSWORD:?")
    assert environment["DATABASE_URL"].endswith("@postgres:5432/shop")
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("postgres", "redis"):
        assert services["app"]["depends_on"][name] == {"condition": "service_healthy"}
        assert services[name]["healthcheck"]["test"][0] == "CMD"
        assert services[name]["restart"] == "unless-stopped"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert {"pgdata", "redisdata"} <= set(compose["volumes"])


def test_the_ignore_file_keeps_secrets_and_data_out() -> None:
    """The ignore file excludes .env files, var/ and SQLite files, and never the lock."""
    ignored = docker_files(settings(), SERVE)[DOCKERIGNORE].splitlines()
    for pattern in ("**/.env", "**/*.env", "var/", "**/*.db", ".git/"):
        assert pattern in ignored
    assert not any("lock" in line for line in ignored if not line.startswith("#"))


def test_a_free_port_bind_is_refused() -> None:
    """BIND with port 0 cannot be published: ConfigurationError naming BIND."""
    with pytest.raises(ConfigurationError, match=r"BIND=127\.0\.0\.1:0 picks a free port"):
        docker_files(settings(BIND="127.0.0.1:0"), SERVE)


def test_a_malformed_python_is_refused() -> None:
    """--python must be MAJOR.MINOR."""
    with pytest.raises(ConfigurationError, match=r"--python must be MAJOR\.MINOR"):
        docker_files(settings(), DockerDeploy(target="shop:app", python="latest"))


@needs_compose
@pytest.mark.parametrize("flags", [(), ("--postgres", "--redis")])
def test_the_compose_client_accepts_the_file(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """`docker compose config` (or docker-compose) parses compose.yaml with its .env, offline."""
    directory = written_project(tmp_path, *flags)
    result = compose_config(directory)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(result.stdout)
    app = config["services"]["app"]
    assert Path(app["build"]["context"]).resolve() == directory.parent.parent.resolve()
    assert app["environment"]["SECRET_KEY"]  # from .env
    if flags:
        password = config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
        assert f"shop:{password}@postgres" in app["environment"]["DATABASE_URL"]


@needs_compose
def test_the_compose_client_names_a_missing_postgres_password(tmp_path: Path) -> None:
    """Without POSTGRES_PASSWORD in .env, the compose client refuses the file and names the variable."""
    directory = written_project(tmp_path, "--postgres")
    env = directory / ".env"
    env.write_text(
        "\n".join(line for line in env.read_text().splitlines() if "POSTGRES_PASSWORD=" not in line)
    )
    result = compose_config(directory)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stdout + result.stderr
