"""A real Prometheus (Debian's) for tests: the files `lastro deploy prometheus` writes, a scrape a second.

`running(directory, targets, env)` writes the configuration for `targets` with the environment `env` (the
service's settings name the job), starts Prometheus on a loopback port, and yields it once it is ready.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.process import ServerProcess, free_port
from tests.support.servers import LASTRO, ROOT

__all__ = ["MISSING", "running"]

MISSING = (
    None
    if shutil.which("prometheus")
    else "Debian's prometheus is not installed: apt-get install -y prometheus (.ci/run does)"
)


@contextmanager
def running(directory: Path, targets: Sequence[str], env: Mapping[str, str]) -> Iterator[ServerProcess]:
    arguments = [argument for target in targets for argument in ("--target", target)]
    subprocess.run(
        [LASTRO, "deploy", "prometheus", *arguments, "--output", str(directory)],
        env=dict(env),
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    config = directory / "prometheus.yml"
    # The one change: a scrape a second rather than every 15 s, so that a test need not wait.
    config.write_text(config.read_text().replace("scrape_interval: 15s", "scrape_interval: 1s"))
    port = free_port()
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with ServerProcess(
        argv, dict(env), directory / "prometheus.log", port=port, ready_path="/-/ready"
    ) as server:
        yield server
