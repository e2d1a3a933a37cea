"""The control directory: where it is, and the files `lastro drain` and `lastro reload` exchange."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from lastro.control import ControlDirectory, control_directory
from lastro.settings import get_settings


def test_it_sits_beside_a_sqlite_database(tmp_path: Path) -> None:
    """Unset CONTROL_DIR and a SQLite file: `<database>-lastro-control` beside it."""
    settings = get_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}")
    assert control_directory(settings) == tmp_path / "app.db-lastro-control"


@pytest.mark.parametrize("url", ["postgresql://u@db:5432/app", "sqlite:///:memory:"])
def test_without_a_database_file_it_is_under_the_working_directory(url: str, tmp_path: Path) -> None:
    """PostgreSQL or an in-memory SQLite: `var/lastro-control` under the working directory."""
    assert control_directory(get_settings(DATABASE_URL=url)) == tmp_path / "var" / "lastro-control"


def test_control_dir_wins(tmp_path: Path) -> None:
    """CONTROL_DIR, when set, is the directory, whatever the database."""
    settings = get_settings(CONTROL_DIR=str(tmp_path / "run"), DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}")
    assert control_directory(settings) == tmp_path / "run"


def test_drain_is_on_until_turned_off(tmp_path: Path) -> None:
    """drain() makes draining() true for every reader of the directory; drain(on=False) ends it."""
    writer, reader = ControlDirectory(tmp_path / "control"), ControlDirectory(tmp_path / "control")
    assert reader.draining() is False
    writer.drain()
    assert reader.draining() is True
    writer.drain(on=False)
    writer.drain(on=False)
    assert reader.draining() is False


def test_a_supervisors_start_ends_a_drain_and_records_its_pid(tmp_path: Path) -> None:
    """Drained before a stop, the next start is ready; its pid is found running until it releases."""
    control = ControlDirectory(tmp_path)
    control.drain()
    control.claim(os.getpid())
    assert (control.draining(), control.running_pid()) == (False, os.getpid())
    control.release(os.getpid())
    assert control.running_pid() is None


def test_a_pid_file_of_a_gone_supervisor_is_not_running(tmp_path: Path) -> None:
    """A supervisor killed without cleaning up leaves its pid: not counted as running."""
    gone = max(psutil.pids()) + 100_000
    ControlDirectory(tmp_path).claim(gone)
    assert ControlDirectory(tmp_path).running_pid() is None


def test_a_reload_request_is_taken_once(tmp_path: Path) -> None:
    """The supervisor takes a request's token once; the next look finds none."""
    control = ControlDirectory(tmp_path)
    token = control.request_reload()
    assert control.take_reload_request() == token
    assert control.take_reload_request() is None


def test_a_reload_answer_is_read_by_its_own_request_only(tmp_path: Path) -> None:
    """An answer carries the token of its request: an older answer is not taken for a newer request's."""
    control = ControlDirectory(tmp_path)
    control.answer_reload("old", True, "2 workers replaced")
    assert control.reload_result("new") is None
    result = control.reload_result("old")
    assert result is not None
    assert (result.ok, result.detail) == (True, "2 workers replaced")


def test_a_reload_with_no_supervisor_to_answer_says_so(tmp_path: Path) -> None:
    """Waiting for an answer ends as soon as the supervisor is found gone."""
    result = ControlDirectory(tmp_path).reload(timeout=10)
    assert result is not None
    assert (result.ok, result.detail) == (False, "the service stopped before it answered")
