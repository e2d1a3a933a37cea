"""uvicorn's multi-process supervisor: forked workers, and a liveness check that notices a worker exiting.

**Forked workers (Linux).** uvicorn spawns each worker as a fresh interpreter that imports FastAPI,
SQLAlchemy, pydantic and the rest again, which is most of a worker's start-up, paid again by every recycled
worker under load (benchmarks/RESULTS.md, "What moved the numbers"). The supervisor has imported those
libraries already (it is `lastro`), so on Linux it forks its workers instead: a worker imports
only the application's own modules (the supervisor never imports them) and starts in a fraction of that.
The first rolling restart (SIGHUP, a deploy) switches to spawning for good: a deploy may have upgraded a
library that the supervisor imported at its start, and every worker must then load it from disk.
Windows has no fork and macOS's system libraries are not fork-safe: both always spawn.
`WORKER_START_METHOD=spawn` spawns on Linux too: the start-up Windows has, testable on Linux.

**Liveness.** uvicorn's supervisor pings each worker over a pipe and waits up to
`timeout_worker_healthcheck` for the answer. A worker that exits on its own (recycled after
`MAX_REQUESTS`) while being pinged never answers, and since the parent holds both ends of the pipe, no EOF
arrives either: the supervisor then blocks for the whole timeout while no replacement starts. When every
worker recycles in that window, the service stops answering. Here the wait is sliced and the process is
looked at between slices, so a worker that exited is replaced within a fraction of a second, and only a
worker that is alive but silent for the whole timeout is killed.

**Reload without a signal.** Windows has no SIGHUP: `lastro reload` asks for the same rolling restart
through the control directory (`lastro.control`), which the supervisor looks at on each turn of its loop
(twice a second), and answers there with the outcome.

**Signals at once.** uvicorn's handlers queue a signal for the loop, which looks at the queue every half
second: a SIGTERM or SIGHUP waited up to 0.5 s before anything happened. Here the handler also wakes the
loop (a byte on a socket pair it sleeps on), so a stop or a rolling restart begins when it is asked for.

**Orphans.** Every worker, forked or spawned, first arranges to stop when the supervisor dies
(`lastro.serve.orphan`). uvicorn's own restart and scale-up build plain uvicorn processes, so both go
through `new_worker` here instead.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import socket as sockets_module
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from socket import socket
from types import FrameType

from uvicorn._subprocess import subprocess_started
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess, Process, logger

from lastro.control import ControlDirectory
from lastro.serve.orphan import die_with_parent
from lastro.workers import freeze_long_lived_objects

__all__ = ["Supervisor", "WorkerProcess", "can_fork", "forks_workers", "worker_answers"]


def can_fork() -> bool:
    # Linux only: macOS system libraries are not fork-safe (Python spawns there by default since 3.8).
    return sys.platform.startswith("linux")


def forks_workers(start_method: str) -> bool:
    """Whether `WORKER_START_METHOD=start_method` forks the workers here (auto on Linux), else spawns."""
    return start_method == "auto" and can_fork()


class WorkerProcess(Process):
    """uvicorn's worker process, forked if `fork` is true, else spawned; it dies with its supervisor."""

    def __init__(self, config: Config, sockets: list[socket], *, fork: bool) -> None:
        super().__init__(config, sockets)
        kwargs = {"config": config, "target": self.target, "sockets": sockets, "parent_pid": os.getpid()}
        if fork:
            forked = multiprocessing.get_context("fork")
            self.process = forked.Process(target=_forked_worker, kwargs=kwargs)  # type: ignore[assignment]
        else:
            kwargs["stdin_fileno"] = _stdin_fileno()
            self.process = multiprocessing.get_context("spawn").Process(target=_spawned_worker, kwargs=kwargs)


def _forked_worker(
    config: Config, target: Callable[..., None], sockets: list[socket], parent_pid: int
) -> None:
    # The supervisor's handlers only queue signals for its own loop; the worker's server installs its own.
    for number in SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    die_with_parent(parent_pid)
    subprocess_started(config, target, sockets, stdin_fileno=None)


def _spawned_worker(
    config: Config,
    target: Callable[..., None],
    sockets: list[socket],
    parent_pid: int,
    stdin_fileno: int | None,
) -> None:
    die_with_parent(parent_pid)
    subprocess_started(config, target, sockets, stdin_fileno=stdin_fileno)


def _stdin_fileno() -> int | None:
    # What uvicorn's get_subprocess passes on, for debuggers that read the worker's stdin.
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError):
        return None


_SLICE = 0.1


def worker_answers(process: Process, timeout: float) -> bool:
    """True if the worker process is alive and answers a ping within `timeout` seconds."""
    if not process.process.is_alive():
        return False
    try:
        process.parent_conn.send(b"ping")
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if process.parent_conn.poll(min(_SLICE, remaining)):
                process.parent_conn.recv()
                return True
            if not process.process.is_alive():
                return False
    except (OSError, EOFError):
        return False
    return False


class Supervisor(Multiprocess):
    """Keeps N workers alive: replaces the dead and kills the hung, like uvicorn's, without the blind wait."""

    tick = 0.5  # seconds between looks at the workers and the control directory, as uvicorn's loop

    def __init__(
        self,
        config: Config,
        sockets: list[socket],
        *,
        before_restart: Callable[[], str | None] | None = None,
        worker_exited: Callable[[int], None] | None = None,
        start_method: str = "auto",
        control: ControlDirectory | None = None,
    ) -> None:
        super().__init__(config, sockets)
        self._wake_up, self._wake = sockets_module.socketpair()  # the loop sleeps on the first
        for end in (self._wake_up, self._wake):
            end.setblocking(False)
        for number in SIGNALS:
            signal.signal(number, self._queue_signal)
        self.control = control  # watched for `lastro reload` requests
        self.fork = forks_workers(start_method)
        self.before_restart = before_restart
        self.worker_exited = worker_exited  # told the pid of every worker that is gone, for its live metrics

    def _queue_signal(self, number: int, frame: FrameType | None) -> None:
        self.signal_queue.append(number)
        with suppress(OSError):  # the pair is full: a wake-up is pending already
            self._wake.send(b"\0")

    def _sleep(self, seconds: float) -> None:
        """Until a signal is queued or `seconds` pass."""
        readable, _, _ = select.select([self._wake_up], [], [], seconds)
        if readable:
            with suppress(OSError):
                self._wake_up.recv(4096)

    def run(self) -> None:
        """uvicorn's `Multiprocess.run`, its loop woken by every signal instead of every half second."""
        logger.info(f"Started parent process [{os.getpid()}]")
        self.init_processes()
        try:
            while not self.should_exit.is_set():
                self._sleep(self.tick)
                self.handle_signals()
                self.keep_subprocess_alive()
            self.terminate_all()
            self.join_all()
        finally:
            self._wake_up.close()
            self._wake.close()
        # Stopped: a repeated SIGTERM (an impatient process manager) would otherwise meet the default
        # handler Python restores as it exits, and turn a clean exit 0 into a death by signal.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logger.info(f"Stopping parent process [{os.getpid()}]")

    def _gone(self, process: Process) -> None:
        if self.worker_exited is not None and process.pid is not None:
            self.worker_exited(process.pid)

    def new_worker(self) -> Process:
        return WorkerProcess(self.config, self.sockets, fork=self.fork)

    def init_processes(self) -> None:
        if self.fork:
            freeze_long_lived_objects()  # what the workers inherit stays shared, untouched by their collector
        for _ in range(self.processes_num):
            process = self.new_worker()
            process.start()
            self.processes.append(process)

    def restart_all(self) -> None:
        """SIGHUP: replace every worker, one at a time (see `rolling_restart`)."""
        self.rolling_restart()

    def rolling_restart(self) -> str | None:
        """Replace every worker, one at a time; refused, the reason logged and returned, if the new code
        cannot run or a new worker is not ready in time. None when every worker was replaced."""
        problem = self.before_restart() if self.before_restart is not None else None
        if problem is not None:
            logger.error(f"Rolling restart refused, the current workers keep serving: {problem}")
            return f"refused, the current workers keep serving: {problem}"
        self.fork = False  # a deploy may have upgraded a library the supervisor imported: spawn from now on
        # uvicorn's restart_all with this supervisor's workers: each ready before the one it replaces goes.
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return "the service is stopping"
            new = self.new_worker()
            new.start()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if self.should_exit.is_set():
                    return "the service is stopping"
                problem = (
                    f"New child process [{new.pid}] was not ready in time; "
                    f"keeping worker [{old.pid}] and aborting the restart."
                )
                logger.error(problem)
                return problem
            old.terminate()
            old.join()
            self._gone(old)
            self.processes[index] = new
        return None

    def handle_signals(self) -> None:
        super().handle_signals()
        if self.control is not None and not self.should_exit.is_set():
            self._reload_if_asked(self.control)

    def _reload_if_asked(self, control: ControlDirectory) -> None:
        """`lastro reload` (no SIGHUP on Windows): the same rolling restart, its outcome answered."""
        try:
            token = control.take_reload_request()
        except OSError as error:
            logger.error(f"Could not read the reload request in {control.path}: {error}")
            return
        if token is None:
            return
        logger.info("Reload requested (lastro reload): restarting the workers one by one.")
        problem = self.rolling_restart()
        detail = problem or f"{len(self.processes)} workers replaced"
        try:
            control.answer_reload(token, problem is None, detail)
        except OSError as error:
            logger.error(f"Could not answer the reload request in {control.path}: {error}")

    def handle_ttou(self) -> None:
        leaving = self.processes[-1] if self.processes_num > 1 else None
        super().handle_ttou()
        if leaving is not None:
            self._gone(leaving)

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        process = self.new_worker()
        process.start()
        self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return  # the parent is stopping: nothing to replace
            if worker_answers(process, self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # dead already, or alive but hung
            process.join()
            self._gone(process)
            if process.exitcode == STARTUP_FAILURE:
                # The application cannot start: every replacement would fail the same way.
                logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return
            logger.info(f"Child process [{process.pid}] died (exit code {process.exitcode})")
            replacement = self.new_worker()
            replacement.start()
            self.processes[index] = replacement
