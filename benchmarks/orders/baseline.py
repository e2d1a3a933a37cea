"""The two comparators of the orders benchmark, from the shared baseline directory, each run as its README
runs it (gunicorn with uvicorn workers, SQLite) in one virtual environment built once and reused:

- the baseline, `seed_app.py`: the orders API as small teams write it today;
- the ceiling, `ceiling_app.py`: the same API on the same schema, hand-tuned for speed with no features
  (sqlite3 called inline on the event loop), the figure lastro's own overhead is measured against.

Both serve the same routes, so both are driven by the baseline's own wrk scripts where it has them, and by
equivalents kept in `benchmarks/lua` for the rest: every side of the comparison runs the same requests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import HOST, ROOT, Server, free_port
from benchmarks.orders.systems import WORKERS
from benchmarks.orders.workloads import LUA, SEED, Plan, Running

logger = logging.getLogger("benchmarks.orders")


def _find_baseline() -> Path:
    """BENCH_BASELINE_DIR, else `shared/baseline` beside this checkout or beside one of its parents."""
    if given := os.environ.get("BENCH_BASELINE_DIR"):
        return Path(given)
    candidates = [parent / "shared" / "baseline" for parent in ROOT.parents]
    return next((path for path in candidates if (path / "seed_app.py").exists()), candidates[0])


BASELINE_DIR = _find_baseline()
BASELINE_VENV = Path(
    os.environ.get("BENCH_BASELINE_VENV", Path.home() / ".cache" / "lastro-bench" / "baseline-venv")
)

# Which script drives each workload: the baseline's own where it has one, equivalents written here for
# the rest (`orders_baseline_*.lua`); the orders API runs translations of them (`orders_*.lua`).
BASELINE_SCRIPTS = {
    "get": LUA / "orders_baseline_get.lua",
    "list": LUA / "orders_baseline_list.lua",
    "mixed": Path("lua/mixed.lua"),  # relative to the baseline directory
    "write": Path("lua/write.lua"),
    "patch": LUA / "orders_baseline_patch.lua",
}


def ensure_baseline_venv() -> Path:
    """The baseline's own virtual environment, built once from its requirements.txt and reused."""
    requirements = BASELINE_DIR / "requirements.txt"
    stamp = BASELINE_VENV / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and (BASELINE_VENV / "bin" / "gunicorn").exists():
        return BASELINE_VENV
    logger.info("building the baseline's virtual environment in %s", BASELINE_VENV)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--clear", str(BASELINE_VENV)], check=True, timeout=120)
    pip = [str(BASELINE_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "-r", str(requirements)], check=True, timeout=600)
    stamp.write_text(digest)
    return BASELINE_VENV


def _baseline_copy(workdir: Path, seed: int) -> Path:
    """The baseline copied as it is, plus this harness's scripts for the workloads it has none for. With a
    seed other than 100k (smoke), the scripts' `max_id` follows it."""
    copy = workdir / "baseline"
    shutil.copytree(BASELINE_DIR, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for workload, script in BASELINE_SCRIPTS.items():
        source = script if script.is_absolute() else copy / script
        text = source.read_text()
        if seed != SEED:
            text = text.replace(f"local max_id = {SEED}", f"local max_id = {seed}")
        (copy / f"bench_{workload}.lua").write_text(text)
    return copy


# The system name of each comparator, and the module its README serves.
COMPARATORS = {"baseline": "seed_app", "ceiling": "ceiling_app"}


def prepare_baseline(workdir: Path, plan: Plan, name: str = "baseline") -> Running:
    """Seeded and ready to start: gunicorn with uvicorn workers, as the baseline's README runs it; `name`
    is "baseline" (`seed_app`) or "ceiling" (`ceiling_app`), each with a database of its own."""
    module = COMPARATORS[name]
    venv = ensure_baseline_venv()
    copy = workdir / "baseline"
    if not copy.exists():
        _baseline_copy(workdir, plan.seed)
    database = workdir / f"{name}.db"
    started = time.monotonic()
    subprocess.run(
        [str(venv / "bin" / "python"), "seed_db.py", str(database), str(plan.seed)],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=300,
    )
    seed_seconds = time.monotonic() - started
    logger.info("%s: seeded %d orders in %.1f s (seed_db.py)", name, plan.seed, seed_seconds)
    port = free_port()
    argv = [
        str(venv / "bin" / "gunicorn"),
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        str(WORKERS),
        "-b",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        "--chdir",
        str(copy),
        f"{module}:app",
    ]
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "DATABASE_URL")}
    env["DB_PATH"] = str(database)
    server = Server(argv, port, "/orders/1", env, workdir / f"{name}.log")
    scripts = {workload: copy / f"bench_{workload}.lua" for workload in plan.workloads}
    return Running(name, "orders", server, scripts, extra={"seed_seconds": round(seed_seconds, 1)})
