"""`lastro deploy systemd`: a unit and its environment file for one service, from its settings.

The unit runs `lastro serve` as the supervisor expects to be run (see `templates/systemd.service`, whose
comments say why each line is there): SIGTERM to the supervisor alone (`KillMode=mixed`), a stop timeout
longer than GRACEFUL_TIMEOUT, SIGHUP as `systemctl reload`, and a file system read-only but for the
directories the service writes to, the SQLite database's first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from lastro.errors import ConfigurationError
from lastro.ops.rendering import render
from lastro.ops.service import SHUTDOWN_MARGIN, ServeCommand, service_name, stop_timeout
from lastro.settings import Settings, is_sqlite_url

__all__ = ["NOFILE_HEADROOM", "SystemdLayout", "database_directory", "open_files_limit", "systemd_files"]

# Files a worker holds besides its clients' sockets: database connections, SQLite's files, logs, pipes.
NOFILE_HEADROOM = 1024
# A path systemd takes as is: no spaces, quotes or `%` (its specifiers), nothing to escape.
_PLAIN_PATH = re.compile(r"/[\w./+@:-]*")


@dataclass(frozen=True)
class SystemdLayout:
    """Where the service lives on the server; every path absolute.

    `directory` is the working directory (the release: a symlink to switch for a rollback), `lastro` the
    command in the release's virtualenv, `env_file` where the environment file is installed, `writable`
    the directories besides the SQLite database's that the service writes to.
    """

    directory: str
    lastro: str
    env_file: str
    user: str
    writable: Sequence[str] = ()

    def __post_init__(self) -> None:
        for option, path in [
            ("--directory", self.directory),
            ("--lastro", self.lastro),
            ("--env-file", self.env_file),
            *(("--writable", path) for path in self.writable),
        ]:
            _check_path(option, path)
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", self.user):
            raise ConfigurationError(
                "--user must be a system user name: lower-case letters, digits, '_' and '-', "
                f"e.g. orders (got {self.user!r})"
            )

    @classmethod
    def default(cls, name: str, **given: str | Sequence[str] | None) -> SystemdLayout:
        """The layout of the guide (docs/deploy/linux-systemd.md), overridden by the options `given`."""
        directory = str(given.get("directory") or f"/srv/{name}/current")
        return cls(
            directory=directory,
            lastro=str(given.get("lastro") or f"{directory}/.venv/bin/lastro"),
            env_file=str(given.get("env_file") or f"/etc/lastro/{name}.env"),
            user=str(given.get("user") or name.lower().replace(".", "-")),
            writable=tuple(given.get("writable") or ()),
        )


def _check_path(option: str, path: str) -> None:
    if not _PLAIN_PATH.fullmatch(path):
        raise ConfigurationError(
            f"{option} must be an absolute path without spaces, quotes or '%', e.g. /srv/orders "
            f"(got {path!r})"
        )


def database_directory(database_url: str, working_directory: str) -> str | None:
    """The directory of a SQLite database file, absolute (a relative one is read from the working
    directory, as the service reads it); None for an in-memory database or another backend."""
    if not is_sqlite_url(database_url):
        return None
    path = database_url.partition("://")[2].partition("?")[0].removeprefix("/")
    if path in ("", ":memory:"):
        return None
    absolute = PurePosixPath(working_directory, path)
    parts: list[str] = []
    for part in absolute.parts:  # `./var/x.db`, `../data/x.db`: normalised without touching the disk
        if part == "..":
            if len(parts) > 1:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return str(PurePosixPath(*parts).parent)


def _outermost(paths: Sequence[str]) -> list[str]:
    """`paths` without those inside another of them (ReadWritePaths covers subdirectories), in order."""
    kept: list[str] = []
    for path in dict.fromkeys(paths):
        inner = PurePosixPath(path)
        if not any(inner.is_relative_to(other) for other in paths if other != path):
            kept.append(path)
    return kept


def open_files_limit(settings: Settings) -> int:
    """LimitNOFILE: what one worker may hold, MAX_CONNECTIONS and the headroom (the limit is per process)."""
    return settings.MAX_CONNECTIONS + NOFILE_HEADROOM


def systemd_files(settings: Settings, command: ServeCommand, layout: SystemdLayout) -> dict[str, str]:
    """File name -> text of `<SERVICE_NAME>.service` and `<SERVICE_NAME>.env`."""
    name = service_name(settings)
    database = database_directory(settings.DATABASE_URL, layout.directory)
    writable = _outermost([*([database] if database else []), *layout.writable])
    nofile = open_files_limit(settings)
    workers = settings.WORKERS
    total = (
        f"{workers} x {nofile} = {workers * nofile}"
        if isinstance(workers, int)
        else f"WORKERS x {nofile} (WORKERS=auto: one per core, at most 4 on SQLite)"
    )
    common = {
        "service": name,
        "env_file": layout.env_file,
        "graceful_timeout": f"{settings.GRACEFUL_TIMEOUT:g}",
        "max_connections": settings.MAX_CONNECTIONS,
        "shutdown_margin": SHUTDOWN_MARGIN,
        "nofile_headroom": NOFILE_HEADROOM,
    }
    unit = render(
        "systemd.service",
        **common,
        target=command.target,
        user=layout.user,
        directory=layout.directory,
        lastro=layout.lastro,
        serve_args=" ".join(command.arguments()),
        upgrade_args=" ".join(command.upgrade_arguments()),
        stop_timeout=stop_timeout(settings),
        nofile=nofile,
        total_files=total,
        read_write_paths=(
            f"ReadWritePaths={' '.join(writable)}"
            if writable
            else "# ReadWritePaths=/srv/DIRECTORY  (none found: the database is not a SQLite file)"
        ),
    )
    env = render(
        "systemd.env",
        **common,
        database_url=settings.DATABASE_URL,
        migrations_dir=settings.MIGRATIONS_DIR,
        redis_url=f"REDIS_URL={settings.REDIS_URL}"
        if settings.REDIS_URL
        else "# REDIS_URL=redis://127.0.0.1:6379/0",
        bind=settings.BIND,
        workers=settings.WORKERS,
        log_level=settings.LOG_LEVEL,
        timeout=f"{settings.TIMEOUT:g}",
        keepalive=f"{settings.KEEPALIVE:g}",
        request_timeout=f"{settings.REQUEST_TIMEOUT:g}",
        max_body_bytes=settings.MAX_BODY_BYTES,
        max_requests=settings.MAX_REQUESTS,
        max_requests_jitter=settings.MAX_REQUESTS_JITTER,
        trusted_proxies=",".join(settings.TRUSTED_PROXIES),
        allowed_hosts=",".join(settings.ALLOWED_HOSTS),
    )
    return {f"{name}.service": unit, f"{name}.env": env}
