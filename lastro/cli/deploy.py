"""`lastro deploy`: files that run the service under other tools."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from lastro.cli.common import EXIT_CONFIG, fail
from lastro.cli.deploy_docker import docker
from lastro.cli.deploy_options import app_options, deploy_settings, output_options, write_or_fail

__all__ = ["deploy"]


@click.group()
def deploy() -> None:
    """Files that run the service under other tools."""


@deploy.command()
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="HOST:PORT",
    help="Address Prometheus scrapes, once per `lastro serve` instance; default: from BIND.",
)
@output_options("deploy/prometheus")
def prometheus(output: str, targets: tuple[str, ...], force: bool) -> None:
    """Write a Prometheus scrape config and alert rules for this service.

    prometheus.yml scrapes /metrics (job SERVICE_NAME, targets from BIND or --target) and loads
    lastro-alerts.yml, the alerts; both say in comments what each part does.
    """
    from lastro.ops.prometheus import SCRAPE_CONFIG, TOKEN_FILE, prometheus_files

    directory = Path(output)
    settings = deploy_settings()
    paths = write_or_fail(
        directory,
        lambda: prometheus_files(settings, targets, config_path=str(directory / SCRAPE_CONFIG)),
        force=force,
    )
    for path in paths:
        click.echo(f"wrote {path}")
    if settings.METRICS_TOKEN is not None:
        click.echo(f"put METRICS_TOKEN in {directory / TOKEN_FILE} (mode 600) before starting Prometheus")
    click.echo(f"run: prometheus --config.file={directory / SCRAPE_CONFIG}")


@deploy.command()
@app_options
@click.option(
    "--directory", help="Working directory on the server, absolute.  [default: /srv/SERVICE_NAME/current]"
)
@click.option(
    "--lastro", "lastro_path", help="The lastro command on the server.  [default: DIRECTORY/.venv/bin/lastro]"
)
@click.option(
    "--env-file", help="Where the environment file is installed.  [default: /etc/lastro/SERVICE_NAME.env]"
)
@click.option("--user", help="System user the service runs as.  [default: SERVICE_NAME]")
@click.option(
    "--writable",
    multiple=True,
    metavar="DIR",
    help="A directory the service writes to besides the SQLite database's (e.g. uploads); repeatable.",
)
@output_options("deploy/systemd")
def systemd(
    app: str,
    factory: bool,
    app_dir: str,
    directory: str | None,
    lastro_path: str | None,
    env_file: str | None,
    user: str | None,
    writable: tuple[str, ...],
    output: str,
    force: bool,
) -> None:
    """Write a systemd unit and its environment file for this service.

    SERVICE_NAME.service runs `lastro serve MODULE:APP` with KillMode=mixed, a TimeoutStopSec longer than
    GRACEFUL_TIMEOUT, reload by SIGHUP and a read-only system but for the SQLite database's directory;
    SERVICE_NAME.env holds the settings, with a SECRET_KEY placeholder production refuses.
    """
    from lastro.ops.service import ServeCommand, service_name
    from lastro.ops.systemd import SystemdLayout, systemd_files

    settings = deploy_settings()
    target = Path(output)

    def build() -> dict[str, str]:
        name = service_name(settings)
        layout = SystemdLayout.default(
            name, directory=directory, lastro=lastro_path, env_file=env_file, user=user, writable=writable
        )
        return systemd_files(settings, ServeCommand(app, factory, app_dir), layout)

    paths = write_or_fail(target, build, force=force)
    for path in paths:
        if path.suffix == ".env":
            path.chmod(0o600)  # it will hold the signing key
        click.echo(f"wrote {path}")
    click.echo(
        f"next: put a random SECRET_KEY in {paths[1]}, then follow the comments at the top of {paths[0]}"
    )


@deploy.command()
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    metavar="HOST:PORT",
    help="Address of one `lastro serve` instance; repeatable.  [default: from BIND]",
)
@click.option("--listen", default="80", show_default=True, help="nginx's listen: PORT or HOST:PORT.")
@click.option("--server-name", default="_", show_default=True, help="nginx's server_name.")
@click.option(
    "--proxy-address",
    metavar="IP",
    help="Address lastro sees nginx connect from, checked against TRUSTED_PROXIES.  "
    "[default: 127.0.0.1 when every instance is on loopback]",
)
@output_options("deploy/nginx")
def nginx(
    upstreams: tuple[str, ...],
    listen: str,
    server_name: str,
    proxy_address: str | None,
    output: str,
    force: bool,
) -> None:
    """Write an nginx reverse proxy in front of this service's instances.

    SERVICE_NAME.conf, for nginx's http block: an upstream with keep-alive connections, the WebSocket
    upgrade, X-Forwarded-For/-Proto, idempotent requests retried on the next instance, and timeouts that
    agree with KEEPALIVE and REQUEST_TIMEOUT. Warns when lastro would not believe nginx's X-Forwarded-For.
    """
    from lastro.ops.nginx import NginxSite, nginx_files, trust_warning

    settings = deploy_settings()
    if proxy_address is not None:
        try:
            ipaddress.ip_address(proxy_address)
        except ValueError:
            fail(f"--proxy-address must be an IP address, e.g. 10.0.0.2 (got {proxy_address!r})", EXIT_CONFIG)
    warning: list[str | None] = []

    def build() -> dict[str, str]:
        files = nginx_files(settings, NginxSite(upstreams, listen, server_name))
        warning.append(trust_warning(settings, upstreams, proxy_address))
        return files

    paths = write_or_fail(Path(output), build, force=force)
    for path in paths:
        click.echo(f"wrote {path}")
    if warning and warning[0]:
        click.echo(f"Warning: {warning[0]}", err=True)
    click.echo(f"next: copy {paths[0]} to /etc/nginx/conf.d/, then: nginx -t && systemctl reload nginx")


@deploy.command()
@app_options
@click.option("--directory", help="AppDirectory on the server, absolute.  [default: C:\\srv\\SERVICE_NAME]")
@output_options("deploy/nssm")
def nssm(app: str, factory: bool, app_dir: str, directory: str | None, output: str, force: bool) -> None:
    """Write deploy.ps1, which runs this service as a Windows service with NSSM.

    `deploy.ps1 -Action install|start|stop|restart|update|remove|status [-Workers N] [-Port P]`: logs
    rotated by NSSM, a stop that drains first and waits longer than GRACEFUL_TIMEOUT, and an update that
    migrates and replaces the workers one by one (`lastro reload`) without refusing requests.
    """
    from lastro.ops.nssm import nssm_files
    from lastro.ops.service import ServeCommand

    settings = deploy_settings()
    paths = write_or_fail(
        Path(output),
        lambda: nssm_files(settings, ServeCommand(app, factory, app_dir), directory),
        force=force,
    )
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(
        f"next: on the server, as Administrator: .\\{paths[0].name} -Action install -Workers 2 -Port 8000"
    )


deploy.add_command(docker)  # one module per large target keeps each small
