"""What the reference service's container runs, run here without Docker: the migrate service's command, the
image's CMD with compose's settings, the health probe, and the stop on SIGTERM within stop_grace_period."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from lastro.ops.docker import HEALTHCHECK
from tests.support.process import ServerProcess
from tests.support.servers import LASTRO, ROOT, free_port, serve_env, uvicorn_thread

REFERENCE = ROOT / "deploy" / "docker"


def reference_compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REFERENCE / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def image_cmd() -> list[str]:
    """The Dockerfile's CMD, in exec form: a JSON array (tests/ops/test_dockerfile.py reads it with BuildKit's
    parser)."""
    (line,) = [
        line for line in (REFERENCE / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    ]
    command = json.loads(line.removeprefix("CMD "))
    assert isinstance(command, list)
    return command


def probe(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK, as the container runs it: the image's Python, BIND from the environment."""
    environment = {"PATH": os.environ.get("PATH", ""), "BIND": f"0.0.0.0:{port}", **env}
    return subprocess.run(
        [sys.executable, "-c", HEALTHCHECK], env=environment, capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def container_env(tmp_path: Path) -> dict[str, str]:
    """compose.yaml's environment for the app, with the paths of the image moved into the test's directory."""
    settings = {key: str(value) for key, value in reference_compose()["x-settings"].items()}
    assert settings["DATABASE_URL"] == "sqlite:////app/var/orders.db"
    settings.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'orders.db'}",
        BACKUP_DIR=str(tmp_path / "backups"),
        IMAGES_DIR=str(tmp_path / "var" / "images"),
        BIND=f"127.0.0.1:{free_port()}",
        SECRET_KEY=secrets.token_urlsafe(48),
    )
    env = serve_env(tmp_path, **settings)
    for name in ("ENVIRONMENT", "LOG_FORMAT", "RATE_LIMIT_DEFAULT", "RATE_LIMIT_LOGIN"):
        if name not in settings:
            env.pop(name, None)  # the container's defaults, not the tests'
    return env


@pytest.fixture
def served(tmp_path: Path, container_env: dict[str, str]) -> Iterator[ServerProcess]:
    """The migrate service's command, then the image's CMD, both from the project's root as /app."""
    migrate = reference_compose()["services"]["migrate"]["command"]
    assert migrate[0] == "lastro"
    subprocess.run([LASTRO, *migrate[1:]], env=container_env, cwd=ROOT, check=True, capture_output=True)
    cmd = image_cmd()
    assert cmd[0] == "lastro"
    port = int(container_env["BIND"].rpartition(":")[2])
    server = ServerProcess([LASTRO, *cmd[1:]], container_env, tmp_path / "serve.log", port=port)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.mark.skipif(sys.platform == "win32", reason="the image runs Linux: its command and SIGTERM as there")
def test_the_container_serves_is_healthy_and_stops_on_sigterm(served: ServerProcess) -> None:
    """One container's life: the migrated reference service answers in production, the HEALTHCHECK exits 0
    (through no proxy, even when the environment names one), and SIGTERM, the image's STOPSIGNAL, stops it
    cleanly within compose's stop_grace_period."""
    assert served.events("lastro serving")[0]["environment"] == "production"
    result = probe(served.port, http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    grace = int(reference_compose()["services"]["app"]["stop_grace_period"].removesuffix("s"))
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=grace) == 0
    assert time.monotonic() - started < grace


def test_the_probe_fails_when_nothing_listens() -> None:
    """No server on BIND's port: the probe exits non-zero, which Docker counts as a failed check."""
    result = probe(free_port())
    assert result.returncode != 0
    assert "urlopen error" in result.stderr


def test_the_probe_fails_on_an_error_status() -> None:
    """A /health/live that answers 500: the probe exits non-zero."""
    app = FastAPI()

    @app.get("/health/live")
    def live() -> PlainTextResponse:
        return PlainTextResponse("broken", status_code=500)

    with uvicorn_thread(app) as url:
        result = probe(int(url.rpartition(":")[2]))
    assert result.returncode != 0
    assert "HTTP Error 500" in result.stderr


def test_the_compose_commands_are_exec_form() -> None:
    """The image's CMD and the migrate command are argument lists (no shell to swallow SIGTERM)."""
    assert image_cmd() == shlex.split("lastro serve examples.orders.app:create_app --factory")
    assert reference_compose()["services"]["migrate"]["command"] == ["lastro", "db", "upgrade"]
