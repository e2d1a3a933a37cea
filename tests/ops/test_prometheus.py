"""The Prometheus files: checked and unit-tested by promtool itself, scrape targets, the token kept out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lastro.errors import ConfigurationError
from lastro.ops.prometheus import (
    ALERT_RULES,
    SCRAPE_CONFIG,
    TOKEN_FILE,
    check_target,
    prometheus_files,
    target_from_bind,
    write_files,
)
from lastro.settings import Settings, load_settings

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed: `apt-get install -y prometheus` (.ci/run does)"
)
RULES_TEST = Path(__file__).with_name("prometheus_rules_test.yml")
TOKEN = "m3tr1cs-T0ken-that-never-lands-in-the-yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def written(directory: Path, settings: Settings, targets: tuple[str, ...] = ()) -> Path:
    write_files(directory, prometheus_files(settings, targets))
    return directory


def scrape_job(settings: Settings, targets: tuple[str, ...] = ()) -> dict[str, object]:
    config = yaml.safe_load(prometheus_files(settings, targets)[SCRAPE_CONFIG])
    (job,) = config["scrape_configs"]
    assert isinstance(job, dict)
    return job


@needs_promtool
def test_promtool_accepts_the_alert_rules(tmp_path: Path) -> None:
    """`promtool check rules` passes on lastro-alerts.yml."""
    directory = written(tmp_path, load_settings(SERVICE_NAME="orders"))
    result = promtool("check", "rules", str(directory / ALERT_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


@needs_promtool
def test_each_alert_fires_on_what_should_fire_it_and_nothing_else(tmp_path: Path) -> None:
    """promtool's rule unit tests pass: each alert fires for the instance it should, after its `for:`."""
    directory = written(tmp_path, load_settings(SERVICE_NAME="orders"))
    shutil.copy(RULES_TEST, directory)
    result = promtool("test", "rules", str(directory / RULES_TEST.name))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_its_rules(tmp_path: Path) -> None:
    """`promtool check config` passes on prometheus.yml and loads the rules file beside it."""
    directory = written(tmp_path, load_settings(SERVICE_NAME="orders"))
    result = promtool("check", "config", str(directory / SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


@needs_promtool
def test_promtool_accepts_the_scrape_config_with_a_token_file(tmp_path: Path) -> None:
    """With METRICS_TOKEN set, prometheus.yml is valid once the token file it names is beside it."""
    directory = written(tmp_path, load_settings(SERVICE_NAME="orders", METRICS_TOKEN=TOKEN))
    (directory / TOKEN_FILE).write_text(TOKEN)
    result = promtool("check", "config", str(directory / SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_service_name_with_quotes_stays_one_valid_job(tmp_path: Path) -> None:
    """A SERVICE_NAME with quotes and backslashes is the job name as it is, in files promtool accepts."""
    name = 'shop "eu" \\ west'
    settings = load_settings(SERVICE_NAME=name)
    directory = written(tmp_path, settings)
    assert promtool("check", "config", str(directory / SCRAPE_CONFIG)).returncode == 0
    assert scrape_job(settings)["job_name"] == name
    rules = yaml.safe_load((directory / ALERT_RULES).read_text())
    assert rules["groups"][0]["rules"][0]["expr"] == 'up{job="shop \\"eu\\" \\\\ west"} == 0'


def test_the_job_is_named_after_the_service_and_reads_metrics() -> None:
    """The scrape job is SERVICE_NAME, reads /metrics every 15 s and loads the rules file."""
    settings = load_settings(SERVICE_NAME="orders")
    config = yaml.safe_load(prometheus_files(settings)[SCRAPE_CONFIG])
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == [ALERT_RULES]
    job = scrape_job(settings)
    assert (job["job_name"], job["metrics_path"]) == ("orders", "/metrics")


def test_the_token_is_read_from_a_file_and_never_written() -> None:
    """With METRICS_TOKEN set, the job sends it from a file beside the config; the token is in no file."""
    settings = load_settings(METRICS_TOKEN=TOKEN)
    files = prometheus_files(settings)
    assert scrape_job(settings)["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
    assert not any(TOKEN in text for text in files.values())


def test_without_a_token_the_job_sends_no_authorization() -> None:
    """Without METRICS_TOKEN the job has no authorization, and its comment says how to add it."""
    settings = load_settings()
    assert "authorization" not in scrape_job(settings)
    assert "set METRICS_TOKEN" in prometheus_files(settings)[SCRAPE_CONFIG]


@pytest.mark.parametrize(
    ("bind", "target"),
    [
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("0.0.0.0:9000", "127.0.0.1:9000"),
        ("[::]:8000", "[::1]:8000"),
        ("[fd00::5]:8000", "[fd00::5]:8000"),
        ("api.internal:8080", "api.internal:8080"),
    ],
)
def test_the_target_comes_from_bind(bind: str, target: str) -> None:
    """Without --target the service's BIND is scraped, a wildcard address on loopback."""
    assert target_from_bind(bind) == target
    assert scrape_job(load_settings(BIND=bind))["static_configs"] == [{"targets": [target]}]


def test_given_targets_replace_bind() -> None:
    """Targets given are scraped, one per `lastro serve`, in their order, instead of BIND."""
    job = scrape_job(load_settings(), ("10.0.0.5:8000", "10.0.0.6:8000"))
    assert job["static_configs"] == [{"targets": ["10.0.0.5:8000", "10.0.0.6:8000"]}]


def test_a_bind_on_port_zero_asks_for_a_target() -> None:
    """BIND with port 0 has no address to scrape: the refusal asks for --target."""
    with pytest.raises(
        ConfigurationError, match=r"^BIND=127.0.0.1:0 picks a free port .* --target HOST:PORT$"
    ):
        prometheus_files(load_settings(BIND="127.0.0.1:0"))


@pytest.mark.parametrize(
    "target", ["http://10.0.0.5:8000", "10.0.0.5", "10.0.0.5:0", "10.0.0.5:70000", "a b:80"]
)
def test_a_target_that_is_not_host_and_port_is_refused(target: str) -> None:
    """A target with a scheme, without a port or with an impossible one is refused, naming the form."""
    with pytest.raises(ConfigurationError, match=r"^--target must be HOST:PORT"):
        check_target(target)


def test_write_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    """One file already there: nothing is written and the error names it."""
    (tmp_path / ALERT_RULES).write_text("mine\n")
    with pytest.raises(FileExistsError, match=f"{ALERT_RULES} already exists: pass --force"):
        write_files(tmp_path, prometheus_files(load_settings()))
    assert [path.name for path in tmp_path.iterdir()] == [ALERT_RULES]
    assert (tmp_path / ALERT_RULES).read_text() == "mine\n"


def test_write_with_force_overwrites(tmp_path: Path) -> None:
    """With force the files already there are replaced."""
    (tmp_path / ALERT_RULES).write_text("mine\n")
    files = prometheus_files(load_settings())
    write_files(tmp_path, files, force=True)
    assert (tmp_path / ALERT_RULES).read_text() == files[ALERT_RULES]


def test_write_creates_the_directory(tmp_path: Path) -> None:
    """The output directory and its parents are created."""
    paths = write_files(tmp_path / "deploy" / "prometheus", prometheus_files(load_settings()))
    assert [path.name for path in paths] == [SCRAPE_CONFIG, ALERT_RULES]
    assert all(path.is_file() for path in paths)
