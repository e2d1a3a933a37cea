"""`run(config)`: serve an ASGI application with N worker processes under uvicorn's supervisor.

uvicorn's supervisor is the one manager with every behaviour lastro promises on both Linux and Windows:
it respawns a worker that dies, recycles a worker after `limit_max_requests` plus jitter (the socket stays
open in the parent, so no connection is refused meanwhile), restarts workers one by one on SIGHUP (the new
worker is ready before the old one stops), and on SIGTERM/SIGINT (CTRL_BREAK on Windows) lets each
worker finish its in-flight requests within the graceful timeout and run its shutdown.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from lastro.control import ControlDirectory, control_directory
from lastro.db.serving import ServingMark, sqlite_file
from lastro.errors import ConfigurationError
from lastro.observability.logging import configure_logging, get_logger, logging_config
from lastro.serve.event_loop import WORKERS_ENV
from lastro.serve.metrics_directory import MetricsDirectory
from lastro.serve.preflight import check_schema
from lastro.serve.protocol import HEADER_TIMEOUT, MAX_HEAD_BYTES, protocol_path
from lastro.serve.supervisor import Supervisor, forks_workers
from lastro.settings import Settings
from lastro.workers import SUPERVISED_ENV, freeze_long_lived_objects

__all__ = ["ServeConfig", "event_loop_name", "run"]

logger = get_logger("lastro.serve")


@dataclass(frozen=True)
class ServeConfig:
    """What `lastro serve` needs beyond the settings: the application and how to load it."""

    target: str
    settings: Settings
    workers: int
    factory: bool = False


def event_loop_name() -> str:
    if sys.platform != "win32" and importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    return "asyncio"


def loop_setting() -> str:
    """uvicorn's `loop`: uvloop with batched accepts (`lastro.serve.event_loop`) where there is uvloop."""
    return "lastro.serve.event_loop:new_event_loop" if event_loop_name() == "uvloop" else "asyncio"


class WorkerConfig(uvicorn.Config):
    """uvicorn's configuration, plus what lastro's protocol reads (`lastro.serve.protocol`); loading the
    application in a worker also freezes what the import made."""

    def __init__(self, *args: Any, header_timeout: float = HEADER_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def load(self) -> None:
        try:
            super().load()
        except ConfigurationError as exc:
            # The application's own settings refused (a factory's get_settings(MySettings), say): one line,
            # and the exit code that stops the supervisor rather than a traceback in a respawn loop.
            logger.error(f"the application refused its settings: {exc}")
            sys.exit(STARTUP_FAILURE)
        freeze_long_lived_objects()  # any application; a lastro one freezes again after its start-up


def uvicorn_config(config: ServeConfig) -> uvicorn.Config:
    settings = config.settings
    return WorkerConfig(
        config.target,
        factory=config.factory,
        host=settings.host,
        port=settings.port,
        workers=config.workers,
        loop=loop_setting(),
        http=protocol_path(),
        log_config=logging_config(settings.LOG_LEVEL, settings.log_format),
        access_log=False,  # lastro's own access line carries the route and request id
        server_header=False,
        # The client address and scheme come from X-Forwarded-For/-Proto only when the peer is a trusted
        # proxy; uvicorn's own default would believe any process on loopback.
        proxy_headers=bool(settings.TRUSTED_PROXIES),
        forwarded_allow_ips=[_network(item) for item in settings.TRUSTED_PROXIES],
        # uvicorn takes whole seconds: round up, so that TIMEOUT=0.5 is 1 s, not 0 s (every worker killed).
        timeout_keep_alive=math.ceil(settings.KEEPALIVE),
        timeout_graceful_shutdown=math.ceil(settings.GRACEFUL_TIMEOUT),
        timeout_worker_healthcheck=math.ceil(settings.TIMEOUT),
        limit_concurrency=settings.MAX_CONNECTIONS,
        header_timeout=settings.HEADER_TIMEOUT,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,  # httptools: bounded by lastro.serve.protocol
        limit_max_requests=settings.MAX_REQUESTS or None,
        limit_max_requests_jitter=settings.MAX_REQUESTS_JITTER,
    )


def _network(item: str) -> str:
    """`10.0.0.1/8` as `10.0.0.0/8`: uvicorn reads a network with host bits set as a host name."""
    return str(ipaddress.ip_network(item, strict=False)) if "/" in item else item


def _claim_control(settings: Settings) -> ControlDirectory | None:
    """The control directory `lastro drain` and `lastro reload` write to, claimed by this supervisor."""
    control = ControlDirectory(control_directory(settings))
    try:
        control.claim(os.getpid())
    except OSError as error:
        logger.warning(
            "control directory unusable: lastro drain and lastro reload cannot reach this service",
            path=str(control.path),
            error=str(error),
        )
        return None
    return control


def run(config: ServeConfig) -> int:
    """Serve until told to stop; return the process exit code (0 after a graceful stop)."""
    settings = config.settings
    configure_logging(settings.LOG_LEVEL, settings.log_format)
    server_config = uvicorn_config(config)
    socket = server_config.bind_socket()
    host, port = socket.getsockname()[:2]
    logger.info(
        "lastro serving",
        app=config.target,
        host=host,
        port=port,
        url=f"http://{settings.host}:{port}",
        workers=config.workers,
        server=f"uvicorn {uvicorn.__version__}",
        event_loop=event_loop_name(),
        worker_start="fork" if forks_workers(settings.WORKER_START_METHOD) else "spawn",
        control_dir=str(control_directory(settings)),
        environment=settings.ENVIRONMENT,
    )
    os.environ[SUPERVISED_ENV] = "1"  # inherited by the workers the supervisor starts
    os.environ[WORKERS_ENV] = str(config.workers)  # each takes its share of the waiting connections
    metrics = MetricsDirectory(settings, f"{host}:{port}")
    metrics.prepare()
    control = _claim_control(settings)
    supervisor = Supervisor(
        server_config,
        sockets=[socket],
        before_restart=lambda: check_schema(settings),
        worker_exited=metrics.worker_exited,
        start_method=settings.WORKER_START_METHOD,
        control=control,
    )
    # Held for the supervisor's life (and inherited by forked workers): `lastro restore` refuses meanwhile.
    database = sqlite_file(settings.DATABASE_URL)
    mark = ServingMark(database) if database is not None else None
    if mark is not None:
        mark.hold_shared()
    try:
        supervisor.run()
    finally:
        socket.close()
        metrics.remove()
        if mark is not None:
            mark.release()
        if control is not None:
            control.release(os.getpid())
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        logger.error("a worker failed to start; see its log lines above")
        return STARTUP_FAILURE
    logger.info("lastro stopped")
    return 0
