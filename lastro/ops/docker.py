"""`lastro deploy docker`: an image and a compose file for one service, from its settings.

From the templates in `templates/`:
- `Dockerfile`: slim Python, two stages, the dependencies from a hashed lock, a user of its own, the
  health check on /health/live in Python's standard library, `lastro serve` as the command;
- `Dockerfile.dockerignore`, beside it: what the build context keeps out of the image (secrets, data);
- `compose.yaml`: the release step (`lastro db upgrade`) and the app, with its restart policy, limits
  derived from the worker count and a stop grace period past GRACEFUL_TIMEOUT; PostgreSQL and Redis
  services when asked for, and the `cluster` profile (`docker_cluster.py`) with its nginx site file;
- `.env`, created once: SECRET_KEY and the other secrets, never overwritten (`docker_env.py`).

Paths inside the image are fixed: the code in /app (the working directory), the data volume on /app/var,
backups on /app/backups.
"""

from __future__ import annotations

import json
import math
import os
import re
import string
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePath

from lastro.errors import ConfigurationError
from lastro.ops import docker_cluster as cluster
from lastro.ops.lock import read_lock
from lastro.settings import Settings, split_bind

__all__ = [
    "COMPOSE",
    "DOCKERFILE",
    "DOCKERIGNORE",
    "ENV_FILE",
    "HEALTHCHECK",
    "STOP_MARGIN",
    "SUPERVISOR_MB",
    "WORKER_MB",
    "DockerDeploy",
    "container_port",
    "database_url",
    "docker_files",
    "image_name",
    "inside_project",
    "plan_deploy",
    "template",
]

DOCKERFILE = "Dockerfile"
# BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile, so the build context's root is left alone.
DOCKERIGNORE = "Dockerfile.dockerignore"
COMPOSE = "compose.yaml"
ENV_FILE = ".env"
# Memory limit: the supervisor, plus each worker. compose.yaml's comment gives what they were measured at.
SUPERVISOR_MB = 128
WORKER_MB = 256
# Seconds compose waits past GRACEFUL_TIMEOUT before it kills the container.
STOP_MARGIN = 15
# The probe, run by the image's own Python: a non-2xx answer or no answer raises, and exits 1.
HEALTHCHECK = (
    "import os, urllib.request as r; "
    "r.build_opener(r.ProxyHandler({})).open("
    "'http://127.0.0.1:' + os.environ['BIND'].rpartition(':')[2] + '/health/live', timeout=4)"
)
_PYTHON_VERSION = re.compile(r"3\.\d{1,2}")
_INSTALL_PROJECT = """\
# The project itself, without its dependencies (every one is in the lock): its wheel is built by the build
# backend its pyproject.toml names, fetched for this step only.
COPY . /src
RUN pip install --no-cache-dir --no-deps /src
"""


@dataclass(frozen=True)
class DockerDeploy:
    """What the files are written for; paths are POSIX, relative to the project's root (the build context)."""

    target: str  # MODULE:APP, as `lastro serve` takes it
    factory: bool = False
    app_dir: str = "."
    lock: str = "requirements.lock"
    python: str = "3.11"
    workers: int = 2
    context: str = "../.."  # the project's root, relative to the directory the files are written to
    dockerfile: str = "deploy/docker/Dockerfile"
    install_project: bool = False  # the project has a pyproject.toml: install it, without dependencies
    migrations_dir: str = "migrations"
    postgres: bool = False
    redis: bool = False
    replicas: int = 0  # instances of the `cluster` profile; 0: no profile
    subnet: str = cluster.CLUSTER_SUBNET  # the compose network's, with the profile


class _Template(string.Template):
    # Dockerfiles and compose files use `$`: `@name` marks what lastro fills in.
    delimiter = "@"


def template(name: str) -> _Template:
    """The template `name` of `templates/`; `@name` marks what is filled in."""
    return _Template(resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def inside_project(path: str | PurePath, project: Path, what: str) -> str:
    """`path` relative to `project`, in POSIX form; ConfigurationError when it lies outside, where the
    image cannot see it."""
    try:
        relative = Path(os.path.relpath(Path(project, path).resolve(), project.resolve()))
    except ValueError:  # Windows: another drive
        relative = Path("..")
    if relative.parts[:1] == ("..",):
        raise ConfigurationError(
            f"{what} must be inside the project, the build context {project} (got {str(path)!r})"
        )
    return relative.as_posix()


def container_port(settings: Settings) -> int:
    port = split_bind(settings.BIND)[1]
    if port == 0:
        raise ConfigurationError(
            f"BIND={settings.BIND} picks a free port at each start: set BIND=HOST:PORT to the port the "
            "container listens on, e.g. BIND=0.0.0.0:8000"
        )
    return port


def _name(service: str, allowed: str, separator: str) -> str:
    cleaned = re.sub(f"[^{allowed}]+", separator, service.lower()).strip("-._")
    return cleaned if cleaned[:1].isalpha() else f"app{separator}{cleaned}".rstrip(separator)


def image_name(settings: Settings) -> str:
    """SERVICE_NAME as Docker names an image or a compose project."""
    return _name(settings.SERVICE_NAME, "a-z0-9._-", "-")


def _seconds(value: float) -> str:
    return f"{value:g}"


def database_url(settings: Settings, *, postgres: bool) -> str:
    """DATABASE_URL in the containers: a file on the data volume, or the postgres service."""
    database = _name(settings.SERVICE_NAME, "a-z0-9_", "_")
    if not postgres:
        return f"sqlite:////app/var/{database}.db"
    password = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env beside compose.yaml}"
    return f"postgresql+psycopg://{database}:{password}@postgres:5432/{database}"


def plan_deploy(
    settings: Settings,
    project: Path,
    output: Path,
    *,
    target: str,
    factory: bool = False,
    app_dir: str = ".",
    lock: str = "requirements.lock",
    python: str | None = None,
    workers: int = 2,
    postgres: bool = False,
    redis: bool = False,
    replicas: int = 0,
    subnet: str = cluster.CLUSTER_SUBNET,
) -> DockerDeploy:
    """The deploy for a project at `project` (the build context) whose files go to `output`; the lock is
    read to check that `pip install --require-hashes` will take it, and for the Python it was made for.
    `replicas` adds the `cluster` profile, which needs PostgreSQL and Redis: it implies both."""
    if replicas:
        replicas, subnet = cluster.check_replicas(replicas), cluster.check_subnet(subnet)
    lock_path = inside_project(lock, project, "--lock")
    try:
        text = (project / lock_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"--lock {lock}: no such file. Generate it with `uv pip compile pyproject.toml "
            f"--generate-hashes --python-version X.Y -o {lock}` (or pip-compile --generate-hashes)"
        ) from None
    found = read_lock(text, lock)
    if found.problems:
        raise ConfigurationError(
            f"--lock {lock}: {found.problems[0]}, which `pip install --require-hashes` refuses: compile it "
            "again with --generate-hashes"
        )
    migrations = inside_project(settings.MIGRATIONS_DIR, project, "MIGRATIONS_DIR")
    if not (project / migrations).is_dir():
        raise ConfigurationError(
            f"MIGRATIONS_DIR={settings.MIGRATIONS_DIR} is not a directory: set MIGRATIONS_DIR to the "
            "application's Alembic scripts, relative to the project, e.g. MIGRATIONS_DIR=migrations"
        )
    output_dir = inside_project(output, project, "--output")
    return DockerDeploy(
        target=target,
        factory=factory,
        app_dir=inside_project(app_dir, project, "--app-dir"),
        lock=lock_path,
        python=python or found.python or f"{sys.version_info.major}.{sys.version_info.minor}",
        workers=workers,
        context=Path(os.path.relpath(project.resolve(), (project / output_dir).resolve())).as_posix(),
        dockerfile=PurePath(output_dir, DOCKERFILE).as_posix(),
        install_project=(project / "pyproject.toml").is_file(),
        migrations_dir=migrations,
        postgres=postgres or bool(replicas),
        redis=redis or bool(replicas),
        replicas=replicas,
        subnet=subnet,
    )


def docker_files(settings: Settings, deploy: DockerDeploy) -> dict[str, str]:
    """File name -> text of the Dockerfile, its ignore file, compose.yaml, and with the cluster profile
    the nginx site file its nginx service mounts."""
    if not _PYTHON_VERSION.fullmatch(deploy.python):
        raise ConfigurationError(f"--python must be MAJOR.MINOR, e.g. 3.11 (got {deploy.python!r})")
    port = container_port(settings)
    image = image_name(settings)
    database = _name(settings.SERVICE_NAME, "a-z0-9_", "_")
    app_dir = [] if deploy.app_dir == "." else ["--app-dir", deploy.app_dir]
    serve = ["lastro", "serve", deploy.target, *(["--factory"] if deploy.factory else []), *app_dir]
    healthcheck = json.dumps(["python", "-c", HEALTHCHECK])
    dockerfile = template(DOCKERFILE).substitute(
        service=image,
        image=image,
        dockerfile=deploy.dockerfile,
        lock=deploy.lock,
        python=deploy.python,
        and_project=" and the project itself" if deploy.install_project else "",
        install_project=_INSTALL_PROJECT if deploy.install_project else "",
        port=port,
        database=database,
        healthcheck=healthcheck,
        command=json.dumps(serve),
    )
    files = {
        DOCKERFILE: dockerfile,
        DOCKERIGNORE: template("dockerignore").substitute(service=image),
        COMPOSE: _compose(settings, deploy, image=image, database=database),
    }
    if deploy.replicas:
        files[cluster.NGINX_SITE] = cluster.nginx_site(settings, deploy.replicas, deploy.subnet, port)
    return files


def _compose(settings: Settings, deploy: DockerDeploy, *, image: str, database: str) -> str:
    port = container_port(settings)
    graceful = settings.GRACEFUL_TIMEOUT
    app_dir = [] if deploy.app_dir == "." else ["--app-dir", deploy.app_dir]
    services = [name for name, wanted in (("postgres", deploy.postgres), ("redis", deploy.redis)) if wanted]
    healthy = "".join(f"\n      {name}:\n        condition: service_healthy" for name in services)
    extra_services = "".join(
        "\n" + template(f"compose-{name}.yaml").substitute(db_user=database, db_name=database)
        for name in services
    )
    volumes = {"postgres": "pgdata", "redis": "redisdata"}
    stop_grace_period = f"{math.ceil(graceful) + STOP_MARGIN}s"
    extra_settings = "\n  REDIS_URL: redis://redis:6379/0" if deploy.redis else ""
    profile = deploy.replicas > 0
    if profile:
        extra_settings += cluster.cluster_settings(deploy.replicas, deploy.workers, deploy.subnet)
        healthy += cluster.cluster_app_network(deploy.subnet)
        extra_services += "\n" + cluster.cluster_services(
            deploy.replicas, deploy.subnet, stop_grace_period=stop_grace_period
        )
    return template(COMPOSE).substitute(
        service=image,
        service_json=json.dumps(settings.SERVICE_NAME),
        image=image,
        port=port,
        workers=deploy.workers,
        graceful=_seconds(graceful),
        margin=STOP_MARGIN,
        stop_grace_period=stop_grace_period,
        database_url=json.dumps(database_url(settings, postgres=deploy.postgres)),
        migrations_dir=json.dumps(deploy.migrations_dir),
        extra_settings=extra_settings,
        context=json.dumps(deploy.context),
        dockerfile=json.dumps(deploy.dockerfile),
        migrate=json.dumps(["lastro", "db", "upgrade", *app_dir]),
        migrate_depends=(
            "\n    depends_on:\n      postgres:\n        condition: service_healthy"
            if deploy.postgres
            else ""
        ),
        app_depends=healthy,
        healthcheck=json.dumps(["CMD", "python", "-c", HEALTHCHECK]),
        cpus=deploy.workers,
        supervisor_mb=SUPERVISOR_MB,
        worker_mb=WORKER_MB,
        memory=f"{SUPERVISOR_MB + deploy.workers * WORKER_MB}M",
        extra_services=extra_services,
        extra_volumes="".join(f"\n  {volumes[name]}:" for name in services),
        app_anchor=" &app" if profile else "",
        networks=cluster.cluster_network(deploy.subnet) if profile else "",
        cluster_usage=cluster.cluster_usage(deploy.replicas) if profile else "",
    )
