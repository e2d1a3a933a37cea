"""Draw `benchmarks/orders.png` from the JSON of `benchmarks/run.py`: throughput and p99 against
concurrency, the baseline and the ceiling against lastro on SQLite and on PostgreSQL, for the mixed and
write-only loads.

    .venv/bin/python -m benchmarks.chart benchmarks/orders.json -o benchmarks/orders.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SYSTEMS = {
    "baseline": ("seed-style baseline (gunicorn + uvicorn, SQLite)", "tab:gray", "o"),
    "ceiling": ("hand-tuned ceiling, no features (gunicorn + uvicorn, SQLite)", "black", "x"),
    "lastro SQLite": ("lastro, SQLite", "tab:blue", "s"),
    "lastro PostgreSQL": ("lastro, PostgreSQL", "tab:green", "^"),
}
WORKLOADS = {"mixed": "mixed (70% GET, 20% list, 10% POST)", "write": "write-only (POST)"}


def draw(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    figure, axes = plt.subplots(2, 2, figsize=(11, 8), squeeze=False)
    for row, (workload, title) in enumerate(WORKLOADS.items()):
        throughput, p99 = axes[row][0], axes[row][1]
        for system, (label, color, marker) in SYSTEMS.items():
            cells = sorted(
                (c for c in results["systems"].get(system, {}).get("cells", []) if c["workload"] == workload),
                key=lambda c: c["connections"],
            )
            if not cells:
                continue
            conns = [c["connections"] for c in cells]
            throughput.plot(conns, [c["ok_rps"] for c in cells], marker=marker, color=color, label=label)
            p99.plot(conns, [c["p99_ms"] for c in cells], marker=marker, color=color, label=label)
        throughput.set_title(f"{title}: throughput")
        throughput.set_ylabel("2xx responses / s (503s left out)")
        throughput.set_ylim(bottom=0)
        p99.set_title(f"{title}: p99 latency")
        p99.set_ylabel("p99 (ms, log scale)")
        p99.set_yscale("log")
        p99.yaxis.set_major_formatter(ScalarFormatter())
        p99.axhline(100, color="tab:red", linestyle=":", linewidth=1, label="100 ms target")
        for axis in (throughput, p99):
            axis.set_xlabel("connections")
            axis.set_xscale("log")
            axis.set_xticks(results["connections"], [str(c) for c in results["connections"]])
            axis.minorticks_off()
            axis.grid(True, alpha=0.3)
        p99.legend(fontsize=8)
    throughput_axis = axes[0][0]
    throughput_axis.legend(fontsize=8)
    figure.suptitle(
        f"Orders service, {results['workers']} workers, {results['seed']:,} orders, "
        f"{results['seconds']:g} s per point ({results['date']}, load avg before {results['load_before']})",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("results", type=Path, help="the --json file of benchmarks/run.py")
    parser.add_argument("-o", "--output", type=Path, default=Path("benchmarks/orders.png"))
    args = parser.parse_args(argv)
    draw(json.loads(args.results.read_text()), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
