"""What `lastro deploy docker` reads before it writes: paths in the project, the lock, the secrets file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastro.errors import ConfigurationError
from lastro.ops.docker import plan_deploy
from lastro.ops.docker_env import env_file_text
from lastro.settings import load_settings
from tests.support.deploy_project import LOCK, make_project


def plan(project: Path, output: str = "deploy/docker", **options: object) -> object:
    return plan_deploy(load_settings(), project, Path(output), target="shop.app:app", **options)  # type: ignore[arg-type]


def test_paths_are_relative_to_the_project(tmp_path: Path) -> None:
    """The build context is the project seen from --output; the Dockerfile and lock, from the project."""
    project = make_project(tmp_path)
    deploy = plan_deploy(
        load_settings(), project, Path("ops/docker/prod"), target="shop.app:app", app_dir="shop/.."
    )
    assert deploy.context == "../../.."
    assert deploy.dockerfile == "ops/docker/prod/Dockerfile"
    assert deploy.lock == LOCK
    assert deploy.app_dir == "."
    assert deploy.migrations_dir == "migrations"


def test_the_python_is_the_locks_unless_given(tmp_path: Path) -> None:
    """The lock's `--python-version` picks the image's Python; --python overrides it."""
    project = make_project(tmp_path)
    assert plan_deploy(load_settings(), project, Path("d"), target="a:b").python == "3.12"
    assert plan_deploy(load_settings(), project, Path("d"), target="a:b", python="3.13").python == "3.13"


def test_a_pyproject_means_the_project_is_installed(tmp_path: Path) -> None:
    """install_project follows the presence of pyproject.toml at the project's root."""
    project = make_project(tmp_path)
    assert not plan_deploy(load_settings(), project, Path("d"), target="a:b").install_project
    (project / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    assert plan_deploy(load_settings(), project, Path("d"), target="a:b").install_project


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output": "../elsewhere"}, "--output must be inside the project"),
        ({"app_dir": "/"}, "--app-dir must be inside the project"),
        ({"lock": "../requirements.lock"}, "--lock must be inside the project"),
        ({"lock": "missing.lock"}, "--lock missing.lock: no such file. Generate it with `uv pip compile"),
    ],
)
def test_paths_outside_the_project_or_missing_are_refused(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    """What the build context cannot hold, or a lock that is not there, is a ConfigurationError naming it."""
    project = make_project(tmp_path)
    output = options.pop("output", "deploy/docker")
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace("`", ".")):
        plan(project, output, **options)


@pytest.mark.parametrize(
    ("lock", "problem"),
    [
        ("fastapi==0.165.0\n", "'fastapi==0.165.0' has no --hash"),
        ("fastapi>=0.165 --hash=sha256:11\n", "'fastapi>=0.165' is not pinned to one version"),
    ],
)
def test_a_lock_pip_would_refuse_is_refused(tmp_path: Path, lock: str, problem: str) -> None:
    """A pin without a hash, or a range, fails before any build, saying what --require-hashes refuses."""
    project = make_project(tmp_path)
    (project / LOCK).write_text(lock)
    with pytest.raises(ConfigurationError, match="--require-hashes") as caught:
        plan(project)
    assert problem in str(caught.value)


def test_a_missing_migrations_directory_is_refused(tmp_path: Path) -> None:
    """MIGRATIONS_DIR must be a directory of the project: the migrate service runs it."""
    project = make_project(tmp_path)
    with pytest.raises(ConfigurationError, match="MIGRATIONS_DIR=alembic is not a directory"):
        plan_deploy(load_settings(MIGRATIONS_DIR="alembic"), project, Path("d"), target="a:b")


def test_a_new_env_file_holds_fresh_secrets() -> None:
    """Created: SECRET_KEY (POSTGRES_PASSWORD with postgres) from the token source, and the project name."""
    tokens = iter(["k" * 48, "p" * 48])
    text = env_file_text(
        None, load_settings(SERVICE_NAME="Shop API"), postgres=True, token=lambda: next(tokens)
    )
    assert text is not None
    lines = text.splitlines()
    assert f"SECRET_KEY={'k' * 48}" in lines
    assert f"POSTGRES_PASSWORD={'p' * 48}" in lines
    assert "COMPOSE_PROJECT_NAME=shop-api" in lines


def test_an_existing_env_file_only_gains_missing_secrets() -> None:
    """A value already set is never changed; a missing secret is appended; nothing to add gives None."""
    existing = "SECRET_KEY=mine\nLOG_LEVEL=DEBUG"
    assert env_file_text(existing, load_settings(), postgres=False, token=lambda: "new") is None
    text = env_file_text(existing, load_settings(), postgres=True, token=lambda: "new")
    assert text is not None
    assert text.startswith("SECRET_KEY=mine\nLOG_LEVEL=DEBUG\n")
    assert text.endswith("POSTGRES_PASSWORD=new\n")
    assert text.count("SECRET_KEY=") == 1
