"""Workers stop when their supervisor is gone, instead of serving on as orphans that hold the port.

A supervisor killed with SIGKILL (or by the OOM killer) cannot stop its workers: they move to PID 1, keep
serving with nobody to replace them, and hold the listening socket, so the next `lastro serve` fails with
"Address already in use". Each worker therefore watches its parent from its very first instruction:

- On Linux the kernel sends the worker SIGTERM the moment its parent dies (`prctl(PR_SET_PDEATHSIG)`),
  which uvicorn treats as a stop: it closes the listening socket and lets the requests in flight finish.
  The signal fires when the *thread* that started the worker exits: uvicorn's supervisor starts, replaces
  and restarts every worker from its main thread, which lives as long as the process.
- Everywhere, a thread waits for the parent to end (a pidfd on Linux, else a few looks a second), logs
  why the worker stops, and ends the process after `ORPHAN_GRACE` seconds if the graceful stop has not:
  without a supervisor nobody would wait for `GRACEFUL_TIMEOUT`, and a port held for 30 s is the bug.

A worker that starts after its parent already died (the race before `prctl`) sees a different parent pid
than the one recorded before fork or spawn, and exits at once.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time

from lastro.observability.logging import get_logger

__all__ = ["ORPHAN_EXIT_CODE", "ORPHAN_GRACE", "die_with_parent", "parent_gone"]

logger = get_logger("lastro.serve")

ORPHAN_GRACE = 1.0  # seconds an orphaned worker has to finish its requests before it is ended
ORPHAN_EXIT_CODE = 1
_POLL = 0.2
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this process stop when the process `parent_pid` ends; exit now if it has ended already."""
    if sys.platform.startswith("linux"):
        _set_parent_death_signal(signal.SIGTERM)
    if parent_gone(parent_pid):
        os._exit(ORPHAN_EXIT_CODE)
    threading.Thread(target=_watch, args=(parent_pid,), name="lastro-parent-watch", daemon=True).start()


def parent_gone(parent_pid: int) -> bool:
    """Whether the process that started this one has ended."""
    if sys.platform == "win32":
        parent = multiprocessing.parent_process()  # Windows keeps a handle on the parent: no pid reuse
        return parent is not None and not parent.is_alive()
    return os.getppid() != parent_pid  # an orphan is adopted by PID 1 or a subreaper


def _set_parent_death_signal(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    except (OSError, AttributeError) as error:  # a libc without prctl: the watch thread still ends us
        logger.warning("parent death signal unavailable", error=str(error))


def _watch(parent_pid: int) -> None:
    _wait_for_parent(parent_pid)
    logger.error(
        "supervisor gone, this worker stops",
        parent_pid=parent_pid,
        grace_seconds=ORPHAN_GRACE,
    )
    if not sys.platform.startswith("linux"):
        signal.raise_signal(signal.SIGTERM)  # on Linux the kernel has sent it already
    time.sleep(ORPHAN_GRACE)
    logger.error("supervisor gone, worker ended after its grace", parent_pid=parent_pid)
    os._exit(ORPHAN_EXIT_CODE)


def _wait_for_parent(parent_pid: int) -> None:
    """Return once the parent has ended: at once through a pidfd where there is one, else by looking."""
    pidfd = _open_pidfd(parent_pid)
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)  # readable once the process has exited
            poller.poll()
        finally:
            os.close(pidfd)
        return
    while not parent_gone(parent_pid):
        time.sleep(_POLL)


def _open_pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        pidfd: int = pidfd_open(pid)
    except OSError:  # kernel before 5.3, a sandbox, or the parent just ended
        return None
    if os.getppid() != pid:  # the pid was reused after our parent ended: do not watch a stranger
        os.close(pidfd)
        return None
    return pidfd
