"""deploy.ps1: a PowerShell script that parses, and that installs the service as `lastro serve` expects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastro.errors import ConfigurationError
from lastro.ops.nssm import SCRIPT, nssm_files
from lastro.ops.rendering import write_files
from lastro.ops.service import ServeCommand
from lastro.settings import Settings, load_settings

tree_sitter = pytest.importorskip("tree_sitter", reason="tree-sitter is in the dev extra")
powershell = pytest.importorskip(
    "tree_sitter_powershell", reason="tree-sitter-powershell is in the dev extra"
)

ORDERS = ServeCommand("examples.orders.app:create_app", factory=True)


def script_of(settings: Settings, directory: str | None = None) -> str:
    return nssm_files(settings, ORDERS, directory)[SCRIPT]


def parse_problems(source: str) -> list[str]:
    """Every ERROR or MISSING node of the PowerShell grammar's parse tree, with its line."""
    parser = tree_sitter.Parser(tree_sitter.Language(powershell.language()))
    tree = parser.parse(source.encode("utf-8"))

    def walk(node: Any) -> Iterator[str]:
        if node.type == "ERROR" or node.is_missing:
            yield f"{node.type} at line {node.start_point[0] + 1}: {node.text!r}"
        for child in node.children:
            yield from walk(child)

    return list(walk(tree.root_node))


def test_the_script_parses_as_powershell() -> None:
    """The PowerShell grammar parses deploy.ps1 with no ERROR and no MISSING node."""
    assert parse_problems(script_of(load_settings(SERVICE_NAME="orders"))) == []


def test_the_parse_check_is_real() -> None:
    """A script with an unclosed block is caught by the same check."""
    broken = script_of(load_settings()).replace("switch ($Action) {", "switch ($Action) {{", 1)
    assert parse_problems(broken) != []


def test_hostile_values_stay_inside_their_strings() -> None:
    """Settings with quotes and `$` are single-quoted literals: the script still parses, nothing expands."""
    settings = load_settings(DATABASE_URL="sqlite:///./var/o'rders $(calc).db")
    script = script_of(settings, directory="C:\\srv\\it's")
    assert parse_problems(script) == []
    assert "DATABASE_URL = 'sqlite:///./var/o''rders $(calc).db'" in script
    assert "$AppDirectory = 'C:\\srv\\it''s'" in script


def test_workers_and_port_are_parameters_defaulting_to_the_settings() -> None:
    """-Workers and -Port (the seeds' deploy.ps1) default to WORKERS and BIND's port."""
    script = script_of(load_settings(WORKERS="3", BIND="0.0.0.0:8100"))
    assert "[string]$Workers = '3'," in script
    assert "[int]$Port = 8100," in script
    assert "[string]$ListenAddress = '0.0.0.0'," in script
    assert 'BIND = "${ListenAddress}:$Port"' in script


def test_every_action_is_offered() -> None:
    """-Action takes install, start, stop, restart, update, remove and status, each handled."""
    script = script_of(load_settings())
    (offered,) = re.findall(r"\[ValidateSet\(([^)]*)\)\]", script)
    actions = re.findall(r"'(\w+)'", offered)
    assert actions == ["install", "start", "stop", "restart", "update", "remove", "status"]
    for action in actions:
        assert f"    '{action}' {{" in script


def test_the_service_runs_lastro_serve_in_its_directory() -> None:
    """NSSM runs the venv's lastro.exe with `serve MODULE:APP --factory` in AppDirectory."""
    script = script_of(load_settings(), directory="D:\\apps\\orders")
    assert "$ServeArguments = 'serve examples.orders.app:create_app --factory'" in script
    assert "Invoke-Nssm set $ServiceName AppParameters $ServeArguments" in script
    assert "Invoke-Nssm set $ServiceName AppDirectory $AppDirectory" in script
    assert "$AppDirectory = 'D:\\apps\\orders'" in script


def test_stop_waits_longer_than_graceful_timeout() -> None:
    """Each stop method waits GRACEFUL_TIMEOUT (rounded up) plus the shutdown margin, in milliseconds."""
    script = script_of(load_settings(GRACEFUL_TIMEOUT="20.2"))
    assert "$StopMilliseconds = 36000" in script
    for method in ("Console", "Window", "Threads"):
        assert f"AppStopMethod{method} $StopMilliseconds" in script


def test_logs_are_rotated() -> None:
    """stdout and stderr go to one appended file that NSSM rotates at start and by size."""
    script = script_of(load_settings())
    for line in (
        "AppStdout $LogFile",
        "AppStderr $LogFile",
        "AppStdoutCreationDisposition 4",
        "AppRotateFiles 1",
        "AppRotateOnline 1",
        "AppRotateBytes 10485760",
    ):
        assert f"Invoke-Nssm set $ServiceName {line}" in script


def test_stop_drains_and_update_reloads() -> None:
    """A stop runs `lastro drain` first; an update migrates, then `lastro reload` (no restart)."""
    script = script_of(load_settings())
    stop = script[script.index("function Stop-LastroService") : script.index("function Update-LastroService")]
    assert stop.index("@('drain')") < stop.index("Invoke-Nssm stop")
    update = script[script.index("function Update-LastroService") : script.index("switch ($Action)")]
    assert update.index("-Arguments $UpgradeArguments") < update.index("@('reload')")
    assert "Invoke-Nssm stop" not in update
    assert "restart" not in update.split("need -Action restart")[1]


def test_a_refused_setting_is_not_restarted_and_the_key_is_generated() -> None:
    """Exit code 2 stops NSSM's restarts; SECRET_KEY is made by secrets.token_urlsafe, kept after."""
    script = script_of(load_settings())
    assert "Invoke-Nssm set $ServiceName AppExit 2 Exit" in script
    assert "secrets.token_urlsafe(48)" in script
    assert "$key = $installed['SECRET_KEY']" in script


def test_script_uses_windows_line_endings_when_written(tmp_path: Path) -> None:
    """Written to disk, deploy.ps1 has CRLF line endings, as Windows tools expect."""
    (path,) = write_files(tmp_path, nssm_files(load_settings(), ORDERS))
    data = path.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 100


@pytest.mark.parametrize("directory", ["srv\\orders", 'C:\\srv\\or"ders', "/srv/orders"])
def test_a_directory_that_is_not_a_windows_path_is_refused(directory: str) -> None:
    """--directory must be an absolute Windows path."""
    with pytest.raises(ConfigurationError, match="--directory must be an absolute Windows path"):
        script_of(load_settings(), directory=directory)


def test_bind_on_port_zero_is_refused() -> None:
    """A service needs a fixed port: BIND=...:0 is refused naming BIND."""
    with pytest.raises(ConfigurationError, match=re.escape("BIND=127.0.0.1:0")):
        script_of(load_settings(BIND="127.0.0.1:0"))
