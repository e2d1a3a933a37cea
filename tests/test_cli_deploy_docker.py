"""`lastro deploy docker`: the files written into the project, .env never overwritten, one-line errors, and
the reference service's committed files in step with the command."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from lastro.cli import main
from lastro.ops.docker import docker_files, plan_deploy
from lastro.settings import load_settings
from tests.support.cli import assert_one_error_line
from tests.support.deploy_project import make_project
from tests.support.servers import ROOT

TARGET = "shop.app:create_app"
# The reference service's files, as docs/deploy/docker.md generates them.
REFERENCE = ROOT / "deploy" / "docker"
REFERENCE_SETTINGS = {
    "SERVICE_NAME": "orders",
    "WORKERS": "2",
    "MIGRATIONS_DIR": "examples/orders/migrations",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project as the current directory; the import path the command extends is restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = make_project(tmp_path)
    monkeypatch.chdir(path)
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["deploy", "docker", *args])


def test_deploy_lists_docker() -> None:
    """`lastro deploy --help` lists the docker command."""
    result = CliRunner().invoke(main, ["deploy", "--help"])
    assert result.exit_code == 0
    assert "docker" in result.stdout


def test_the_files_go_to_deploy_docker_and_are_named(project: Path) -> None:
    """Without --output: Dockerfile, its ignore file, compose.yaml and .env in ./deploy/docker, each named."""
    result = invoke(TARGET, "--factory")
    assert result.exit_code == 0, result.output
    directory = project / "deploy" / "docker"
    names = sorted(path.name for path in directory.iterdir())
    assert names == [".env", "Dockerfile", "Dockerfile.dockerignore", "compose.yaml"]
    for name in ("Dockerfile", "Dockerfile.dockerignore", "compose.yaml"):
        assert f"wrote deploy/docker/{name}" in result.stdout
    assert "wrote deploy/docker/.env: SECRET_KEY" in result.stdout
    assert "run: docker compose -f deploy/docker/compose.yaml up -d --build" in result.stdout
    if sys.platform != "win32":  # Windows keeps no Unix mode
        assert stat.S_IMODE((directory / ".env").stat().st_mode) == 0o600
    assert '"lastro", "serve", "shop.app:create_app", "--factory"' in (directory / "Dockerfile").read_text()


def test_options_shape_the_files(project: Path) -> None:
    """--output, --lock, --python, --postgres and --redis land in the files."""
    (project / "locks").mkdir()
    (project / "requirements.lock").rename(project / "locks" / "prod.lock")
    args = ["--output", "ops/image", "--lock", "locks/prod.lock", "--python", "3.13", "--postgres", "--redis"]
    result = invoke(TARGET, *args)
    assert result.exit_code == 0, result.output
    dockerfile = (project / "ops" / "image" / "Dockerfile").read_text()
    assert "COPY locks/prod.lock /tmp/requirements.lock" in dockerfile
    assert "ARG PYTHON_VERSION=3.13" in dockerfile
    compose = yaml.safe_load((project / "ops" / "image" / "compose.yaml").read_text())
    assert {"postgres", "redis"} <= set(compose["services"])
    assert "POSTGRES_PASSWORD=" in (project / "ops" / "image" / ".env").read_text()


def test_existing_files_are_not_overwritten(project: Path) -> None:
    """A second run refuses with one `Error:` line naming the files, exit code 1, and changes nothing."""
    assert invoke(TARGET).exit_code == 0
    dockerfile = project / "deploy" / "docker" / "Dockerfile"
    dockerfile.write_text("# edited by hand\n")
    assert_one_error_line(invoke(TARGET), 1, "deploy/docker/Dockerfile and ", "already exist", "--force")
    assert dockerfile.read_text() == "# edited by hand\n"


def test_force_overwrites_the_files_but_never_env(project: Path) -> None:
    """With --force the files are written again; .env keeps its values and only gains a missing secret."""
    assert invoke(TARGET).exit_code == 0
    env = project / "deploy" / "docker" / ".env"
    env.write_text("SECRET_KEY=kept-as-the-operator-set-it\n")
    result = invoke(TARGET, "--force")
    assert result.exit_code == 0, result.output
    assert "kept deploy/docker/.env" in result.stdout
    assert env.read_text() == "SECRET_KEY=kept-as-the-operator-set-it\n"
    result = invoke(TARGET, "--force", "--postgres")
    assert "added the missing secrets to deploy/docker/.env" in result.stdout
    assert env.read_text().startswith("SECRET_KEY=kept-as-the-operator-set-it\n# ")
    assert "\nPOSTGRES_PASSWORD=" in env.read_text()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["shop.app"], ["TARGET must be MODULE:APP"]),
        (["nowhere.app:app"], ["no module named 'nowhere.app'"]),
        (["shop.app:missing"], ["defines no 'missing'"]),
        ([TARGET, "--lock", "absent.lock"], ["--lock absent.lock: no such file", "uv pip compile"]),
        ([TARGET, "--output", "../outside"], ["--output must be inside the project"]),
        ([TARGET, "--python", "3"], ["--python must be MAJOR.MINOR"]),
    ],
)
def test_mistakes_are_one_error_line_with_exit_code_2(
    project: Path, args: list[str], fragments: list[str]
) -> None:
    """A bad target, lock, output or Python: one `Error:` line naming it, exit code 2, and no files."""
    assert_one_error_line(invoke(*args), 2, *fragments)
    assert not (project / "deploy").exists()


def test_cluster_writes_the_site_and_the_profile(project: Path) -> None:
    """--replicas 2 implies --cluster, --postgres and --redis: the site file beside compose.yaml, the profile
    with app-2 and nginx, POSTGRES_PASSWORD in .env, and the command that starts the profile."""
    result = invoke(TARGET, "--replicas", "2")
    assert result.exit_code == 0, result.output
    directory = project / "deploy" / "docker"
    assert "wrote deploy/docker/nginx-site.conf" in result.stdout
    assert "docker compose -f deploy/docker/compose.yaml --profile cluster up -d --build" in result.stdout
    compose = yaml.safe_load((directory / "compose.yaml").read_text())
    assert {"app", "app-2", "nginx", "postgres", "redis"} <= set(compose["services"])
    assert "app-3" not in compose["services"]
    assert compose["x-settings"]["INSTANCES"] == "2"
    assert "POSTGRES_PASSWORD=" in (directory / ".env").read_text()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--replicas", "1"], ["--replicas must be a whole number from 2 to 9", "(got '1')"]),
        (["--cluster", "--replicas", "lots"], ["--replicas must be a whole number", "(got 'lots')"]),
        (["--cluster", "--subnet", "8.8.8.0/24"], ["--subnet must be a private IPv4 network", "8.8.8.0/24"]),
    ],
)
def test_a_bad_cluster_option_is_one_error_line(project: Path, args: list[str], fragments: list[str]) -> None:
    """A replica count or subnet out of range: one `Error:` line naming it, exit code 2, and no files."""
    assert_one_error_line(invoke(TARGET, *args), 2, *fragments)
    assert not (project / "deploy").exists()


def test_a_cluster_past_the_connection_budget_is_one_error_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """9 instances of 8 workers would hold more PostgreSQL connections than there are: one `Error:` line."""
    monkeypatch.setenv("WORKERS", "8")
    assert_one_error_line(invoke(TARGET, "--replicas", "9"), 2, "--replicas 9 with WORKERS=8", "lower")
    assert not (project / "deploy").exists()


def test_a_bad_setting_is_one_error_line(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A BIND on port 0 cannot be published: one `Error:` line naming BIND, exit code 2."""
    monkeypatch.setenv("BIND", "0.0.0.0:0")
    assert_one_error_line(invoke(TARGET), 2, "BIND=0.0.0.0:0 picks a free port")


def test_an_unwritable_output_is_one_error_line(project: Path) -> None:
    """An --output that cannot be created gives one `Error:` line naming it, exit code 1."""
    (project / "taken").write_text("a file, not a directory\n")
    assert_one_error_line(invoke(TARGET, "--output", "taken/docker"), 1, "writing taken/docker failed")


def test_the_reference_services_files_are_what_the_command_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/docker/ holds what docs/deploy/docker.md's command writes for the orders service, today."""
    for name, value in REFERENCE_SETTINGS.items():
        monkeypatch.setenv(name, value)
    deploy = plan_deploy(
        load_settings(),
        ROOT,
        Path("deploy/docker"),
        target="examples.orders.app:create_app",
        factory=True,
        lock="requirements/deploy.lock",
        workers=2,
    )
    for name, text in docker_files(load_settings(), deploy).items():
        assert (REFERENCE / name).read_text() == text, (
            f"deploy/docker/{name} is stale: see docs/deploy/docker.md"
        )
