"""`lastro deploy prometheus`: both files written where asked, never overwritten without --force."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from lastro.cli import main
from tests.support.cli import assert_one_error_line


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["deploy", "prometheus", *args])


def test_deploy_lists_prometheus() -> None:
    """`lastro deploy --help` lists the prometheus command."""
    result = CliRunner().invoke(main, ["deploy", "--help"])
    assert result.exit_code == 0
    assert "prometheus" in result.stdout


def test_both_files_are_written_into_deploy_prometheus(tmp_path: Path) -> None:
    """Without --output, prometheus.yml and lastro-alerts.yml go to ./deploy/prometheus, and are named."""
    result = invoke()
    assert result.exit_code == 0, result.output
    directory = tmp_path / "deploy" / "prometheus"
    assert sorted(path.name for path in directory.iterdir()) == ["lastro-alerts.yml", "prometheus.yml"]
    assert "wrote deploy/prometheus/prometheus.yml" in result.stdout
    assert "wrote deploy/prometheus/lastro-alerts.yml" in result.stdout
    assert "run: prometheus --config.file=deploy/prometheus/prometheus.yml" in result.stdout


def test_output_and_settings_shape_the_scrape_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--output is where the files go; SERVICE_NAME names the job and --target, repeated, the targets."""
    monkeypatch.setenv("SERVICE_NAME", "orders")
    result = invoke("--output", "ops", "--target", "10.0.0.5:8000", "--target", "10.0.0.6:8000")
    assert result.exit_code == 0, result.output
    (job,) = yaml.safe_load((tmp_path / "ops" / "prometheus.yml").read_text())["scrape_configs"]
    assert job["job_name"] == "orders"
    assert job["static_configs"] == [{"targets": ["10.0.0.5:8000", "10.0.0.6:8000"]}]


def test_with_metrics_token_the_command_says_where_the_token_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With METRICS_TOKEN set, the command names the file Prometheus reads the token from."""
    monkeypatch.setenv("METRICS_TOKEN", "m3tr1cs-T0ken-that-never-lands-in-the-yml")
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "put METRICS_TOKEN in deploy/prometheus/metrics.token (mode 600)" in result.stdout


def test_existing_files_are_not_overwritten(tmp_path: Path) -> None:
    """A second run refuses with one `Error:` line naming the files, exit code 1, and changes nothing."""
    assert invoke().exit_code == 0
    config = tmp_path / "deploy" / "prometheus" / "prometheus.yml"
    config.write_text("# edited by hand\n")
    assert_one_error_line(invoke(), 1, "deploy/prometheus/prometheus.yml and ", "already exist", "--force")
    assert config.read_text() == "# edited by hand\n"


def test_force_overwrites(tmp_path: Path) -> None:
    """With --force the files already there are written again."""
    assert invoke().exit_code == 0
    config = tmp_path / "deploy" / "prometheus" / "prometheus.yml"
    config.write_text("# edited by hand\n")
    assert invoke("--force").exit_code == 0
    assert config.read_text().startswith("# Prometheus configuration")


@pytest.mark.parametrize("target", ["http://10.0.0.5:8000/metrics", "10.0.0.5"])
def test_a_bad_target_is_one_error_line_with_exit_code_2(tmp_path: Path, target: str) -> None:
    """A --target that is not HOST:PORT gives one `Error:` line naming the form, exit code 2, and no files."""
    assert_one_error_line(invoke("--target", target), 2, "--target must be HOST:PORT", repr(target))
    assert not (tmp_path / "deploy").exists()


def test_a_bad_setting_is_one_error_line_with_exit_code_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed BIND gives one `Error:` line naming it, exit code 2."""
    monkeypatch.setenv("BIND", "localhost")
    assert_one_error_line(invoke(), 2, "BIND must be HOST:PORT")


def test_an_unwritable_output_is_one_error_line(tmp_path: Path) -> None:
    """An --output that cannot be created gives one `Error:` line naming it, exit code 1."""
    (tmp_path / "taken").write_text("a file, not a directory\n")
    assert_one_error_line(invoke("--output", "taken/prometheus"), 1, "writing taken/prometheus failed")
