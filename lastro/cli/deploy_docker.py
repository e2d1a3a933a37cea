"""`lastro deploy docker`: a Dockerfile and a compose.yaml for the service (registered in cli/deploy.py)."""

from __future__ import annotations

from pathlib import Path

import click

from lastro.cli.common import EXIT_CONFIG, EXIT_FAILED, fail
from lastro.cli.deploy_options import app_options, output_options
from lastro.errors import ConfigurationError, one_line

__all__ = ["docker"]


@click.command()
@app_options
@click.option(
    "--lock",
    default="requirements.lock",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Requirements file of exact versions with hashes the image installs, inside the project "
    "(`uv pip compile pyproject.toml --generate-hashes -o requirements.lock`).",
)
@click.option(
    "--python",
    default=None,
    metavar="X.Y",
    help="Python of the image; default: the one the lock was compiled for, else this one.",
)
@click.option("--postgres", is_flag=True, default=False, help="Add a PostgreSQL service for DATABASE_URL.")
@click.option("--redis", is_flag=True, default=False, help="Add a Redis service for REDIS_URL.")
@click.option(
    "--cluster",
    is_flag=True,
    default=False,
    help="Add the `cluster` compose profile: instances behind nginx, on PostgreSQL and Redis (implies "
    "--postgres --redis); `docker compose --profile cluster up` starts it.",
)
@click.option(
    "--replicas",
    metavar="N",
    default=None,
    help="Instances of the cluster profile, 2 to 9; implies --cluster.  [default: 3]",
)
@click.option(
    "--subnet",
    metavar="CIDR",
    default=None,
    help="Subnet of the cluster profile's compose network, private IPv4; implies --cluster.  "
    "[default: 10.201.0.0/24]",
)
@output_options("deploy/docker")
def docker(
    app: str,
    factory: bool,
    app_dir: str,
    lock: str,
    python: str | None,
    postgres: bool,
    redis: bool,
    cluster: bool,
    replicas: str | None,
    subnet: str | None,
    output: str,
    force: bool,
) -> None:
    """Write a Dockerfile and a compose.yaml that serve MODULE:APP, run from the project's root.

    The image installs the lock's exact versions, checked against their hashes, runs `lastro serve` as a
    user of its own and probes /health/live; compose.yaml migrates (`lastro db upgrade`) before it serves.
    .env beside them holds SECRET_KEY: created once, never overwritten, even with --force. With --cluster,
    compose.yaml gains the `cluster` profile and nginx-site.conf is written beside it.
    """
    import os

    from lastro.cli.common import app_settings
    from lastro.ops.docker import COMPOSE, ENV_FILE, database_url, docker_files, plan_deploy
    from lastro.ops.docker_cluster import CLUSTER_SUBNET, DEFAULT_REPLICAS, check_replicas
    from lastro.ops.docker_env import env_file_text
    from lastro.ops.prometheus import write_files
    from lastro.serve.target import target_problem
    from lastro.workers import resolve_workers

    settings = app_settings(app_dir)
    mistake = target_problem(app, app_dir)
    if mistake is not None:
        fail(mistake, EXIT_CONFIG)
    directory = Path(output)
    env_path = directory / ENV_FILE
    cluster = cluster or replicas is not None or subnet is not None
    postgres = postgres or cluster
    try:
        count = check_replicas(DEFAULT_REPLICAS if replicas is None else replicas) if cluster else 0
        workers = resolve_workers(settings.WORKERS, database_url(settings, postgres=postgres))
        plan = plan_deploy(
            settings,
            Path.cwd(),
            directory,
            target=app,
            factory=factory,
            app_dir=app_dir,
            lock=lock,
            python=python,
            workers=workers,
            postgres=postgres,
            redis=redis,
            replicas=count,
            subnet=subnet or CLUSTER_SUBNET,
        )
        paths = write_files(directory, docker_files(settings, plan), force=force)
        existing = env_path.read_text(encoding="utf-8") if env_path.exists() else None
        env_text = env_file_text(existing, settings, postgres=postgres)
        if env_text is not None:
            # Secrets: readable by its owner only, from the first byte written.
            descriptor = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(env_text)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except FileExistsError as exc:
        fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        fail(f"writing {directory} failed: {one_line(exc)}", EXIT_FAILED)
    for path in paths:
        click.echo(f"wrote {path}")
    if existing is None:
        click.echo(f"wrote {env_path}: SECRET_KEY and the other secrets (mode 600; never overwritten)")
    elif env_text is not None:
        click.echo(f"added the missing secrets to {env_path}")
    else:
        click.echo(f"kept {env_path}")
    click.echo(f"run: docker compose -f {directory / COMPOSE} up -d --build")
    if cluster:
        click.echo(
            f"or, {count} instances behind nginx: "
            f"docker compose -f {directory / COMPOSE} --profile cluster up -d --build"
        )
