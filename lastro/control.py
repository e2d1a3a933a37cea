"""The control directory: how `lastro drain` and `lastro reload` reach a running `lastro serve` without a
signal (Windows has no SIGHUP), through files any process with the same settings can write.

The directory is `CONTROL_DIR`; unset, it sits beside a SQLite database file (`<database>-lastro-control`,
with SQLite's -wal and lastro's -lastro-lock files), else it is `var/lastro-control` under the working
directory. A command run with the service's settings (same environment, same working directory) finds it.

- `drain`: while this file exists every worker answers `/health/ready` with 503 (`"status": "draining"`),
  so a balancer or a deploy script stops sending, and goes on serving whatever still arrives. A worker
  looks at the file on each ready probe: one `stat`. `lastro drain --off` removes it; so does the
  supervisor's next start, so that a service drained before a stop is ready again after it.
- `reload-request`: `lastro reload` writes a token there; the supervisor, which looks twice a second,
  takes it (renames it away), restarts the workers one by one as on SIGHUP, and answers in
  `reload-result` with the same token, so the command knows how its reload went.
- `supervisor.pid`: the running supervisor's pid, so the commands can tell "no service" from "slow".
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lastro.settings import Settings

__all__ = ["ControlDirectory", "ReloadResult", "control_directory"]


def control_directory(settings: Settings) -> Path:
    """`CONTROL_DIR`, or the default derived from `DATABASE_URL` (see the module's docstring)."""
    if settings.CONTROL_DIR is not None:
        return settings.CONTROL_DIR.absolute()
    try:
        url = make_url(settings.DATABASE_URL)
    except ArgumentError:
        url = None
    path = url.database if url is not None and url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not path.startswith("file:"):
        database = Path(path).absolute()
        return database.with_name(database.name + "-lastro-control")
    return Path("var", "lastro-control").absolute()


@dataclass(frozen=True)
class ReloadResult:
    token: str
    ok: bool
    detail: str


class ControlDirectory:
    """The files of one service's control directory (created on first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.drain_file = path / "drain"
        self.request_file = path / "reload-request"
        self.result_file = path / "reload-result"
        self.pid_file = path / "supervisor.pid"

    # Drain: read by every worker, written by `lastro drain`.
    def draining(self) -> bool:
        return self.drain_file.exists()

    def drain(self, on: bool = True) -> None:
        if on:
            self._write(self.drain_file, "")
        else:
            self.drain_file.unlink(missing_ok=True)

    # The supervisor's side.
    def claim(self, pid: int) -> None:
        """At the supervisor's start: record its pid, end any drain and drop stale reload files."""
        self.drain(on=False)
        self.request_file.unlink(missing_ok=True)
        self._write(self.pid_file, str(pid))

    def release(self, pid: int) -> None:
        if self.supervisor_pid() == pid:
            self.pid_file.unlink(missing_ok=True)

    def take_reload_request(self) -> str | None:
        """The token of a pending `lastro reload`, removed so that it runs once; None when there is none."""
        taken = self.path / f"reload-taken-{os.getpid()}"
        try:
            os.replace(self.request_file, taken)
        except FileNotFoundError:
            return None
        try:
            return taken.read_text().strip() or "-"
        finally:
            taken.unlink(missing_ok=True)

    def answer_reload(self, token: str, ok: bool, detail: str) -> None:
        self._write(self.result_file, json.dumps({"token": token, "ok": ok, "detail": detail}))

    # The command's side.
    def supervisor_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """The pid of the supervisor that claimed this directory, if that process is alive."""
        pid = self.supervisor_pid()
        return pid if pid is not None and psutil.pid_exists(pid) else None

    def request_reload(self) -> str:
        token = uuid.uuid4().hex
        self._write(self.request_file, token)
        return token

    def reload(self, timeout: float, poll: float = 0.1) -> ReloadResult | None:
        """Ask the supervisor for a rolling restart and wait for its answer; None if none came in time."""
        token = self.request_reload()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.reload_result(token)
            if result is not None:
                return result
            if self.running_pid() is None:
                return ReloadResult(token, False, "the service stopped before it answered")
            time.sleep(poll)
        return None

    def reload_result(self, token: str) -> ReloadResult | None:
        try:
            answer: dict[str, Any] = json.loads(self.result_file.read_text())
        except (OSError, ValueError):
            return None
        if answer.get("token") != token:
            return None
        return ReloadResult(token, bool(answer.get("ok")), str(answer.get("detail", "")))

    def _write(self, target: Path, text: str) -> None:
        """Written whole or not at all: a reader never sees half a token."""
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        temporary.write_text(text)
        os.replace(temporary, target)
