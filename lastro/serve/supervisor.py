"""uvicorn's multi-process supervisor, with a liveness check that notices a worker exiting mid-check.

uvicorn's supervisor pings each worker over a pipe and waits up to `timeout_worker_healthcheck` for the
answer. A worker that exits on its own (recycled after `MAX_REQUESTS`) while being pinged never answers, and
since the parent holds both ends of the pipe, no EOF arrives either: the supervisor then blocks for the whole
timeout while no replacement starts. When every worker recycles in that window, the service stops answering.
Here the wait is sliced and the process is looked at between slices, so a worker that exited is replaced
within a fraction of a second, and only a worker that is alive but silent for the whole timeout is killed.
"""

from __future__ import annotations

import time

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

__all__ = ["Supervisor", "worker_answers"]

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

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return  # the parent is stopping: nothing to replace
            if worker_answers(process, self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # dead already, or alive but hung
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # The application cannot start: every replacement would fail the same way.
                logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return
            logger.info(f"Child process [{process.pid}] died")
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[index] = replacement
