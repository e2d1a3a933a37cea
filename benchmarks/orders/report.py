"""The report of the orders benchmark: the targets met or missed, and the markdown tables, from the results
alone, so that `python -m benchmarks.run --report FILE` renders a saved run again.
"""

from __future__ import annotations

from typing import Any

from benchmarks.orders.profile import PROFILE_CONNECTIONS
from benchmarks.orders.systems import ORDER_SYSTEMS, START_WORKERS
from benchmarks.orders.workloads import WORKLOADS
from benchmarks.servers import _ms, _n, _table


def cell(results: dict[str, Any], system: str, workload: str, connections: int) -> dict[str, Any] | None:
    found = results["systems"].get(system, {}).get("cells", [])
    return next((c for c in found if c["workload"] == workload and c["connections"] == connections), None)


def _cpu(found: dict[str, Any] | None) -> float | None:
    value = found.get("cpu_ms_per_request") if found else None
    return float(value) if value else None


def _cpu_ratio(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    """How many of our requests fit in the worker CPU time of one of theirs: the throughput ratio two
    CPU-bound systems would have on the same idle cores, and a figure other load on the machine disturbs
    far less than req/s."""
    mine, other = _cpu(ours), _cpu(theirs)
    return f"; by worker CPU per request {other / mine:.2f}x" if mine and other else ""


def _cpu_range(shares: list[float]) -> str:
    if not shares:
        return ""
    low, high = round(100 * min(shares)), round(100 * max(shares))
    return (
        f"; by worker CPU per request {low}%" if low == high else f"; by worker CPU per request {low}-{high}%"
    )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each performance target, as measured in this run: the figure, the bar, met or missed."""
    top = max(results["connections"])
    rows: list[dict[str, Any]] = []

    def add(name: str, bar: str, measured: str, met: bool) -> None:
        rows.append({"target": name, "bar": bar, "measured": measured, "met": met})

    for system in ORDER_SYSTEMS[1:]:
        for workload in ("mixed", "write"):
            ours, theirs = cell(results, system, workload, top), cell(results, "baseline", workload, top)
            if ours and theirs and theirs["ok_rps"]:
                ratio = ours["ok_rps"] / theirs["ok_rps"]
                text = f"{ratio:.2f}x ({ours['ok_rps']:,.0f} vs {theirs['ok_rps']:,.0f} 2xx/s"
                text += _cpu_ratio(ours, theirs) + ")"
                add(f"{workload} c={top} throughput vs baseline ({system})", ">= 4x", text, ratio >= 4)
        write = cell(results, system, "write", top)
        if write:
            errors = write["non_2xx"] + write["socket_errors"]
            statuses = ", ".join(f"{n} x {code}" for code, n in write.get("statuses", {}).items())
            text = str(errors) + (f" ({statuses})" if statuses else "")
            add(f"write c={top} errors ({system})", "0", text, errors == 0)
            add(f"write c={top} database locked ({system})", "0", str(write["locked"]), write["locked"] == 0)
            p99 = write["p99_ms"]
            add(f"write c={top} p99 ({system})", "<= 100 ms", f"{p99:.1f} ms", p99 <= 100)
    mixed = cell(results, "lastro SQLite", "mixed", top)
    if mixed:
        p99 = mixed["p99_ms"]
        add(f"mixed c={top} p99 (lastro SQLite)", "<= 100 ms", f"{p99:.1f} ms", p99 <= 100)
    for system in ORDER_SYSTEMS[1:]:
        ratios = []
        for c in results["connections"]:
            get, hello = cell(results, system, "get", c), cell(results, "FastAPI hello", "hello", c)
            if get and hello and hello["ok_rps"]:
                ratios.append((c, get["ok_rps"] / hello["ok_rps"], _cpu(get), _cpu(hello)))
        if ratios:
            text = ", ".join(f"c={c}: {100 * r:.0f}%" for c, r, _, _ in ratios)
            text += _cpu_range([hello / get for _, _, get, hello in ratios if get and hello])
            add(
                f"GET by id vs FastAPI hello ({system})",
                ">= 50%",
                text,
                min(r for _, r, _, _ in ratios) >= 0.5,
            )
    costs = []
    for c in results["connections"]:
        wrapped = cell(results, "FastAPI hello + lastro", "hello", c)
        bare = cell(results, "FastAPI hello", "hello", c)
        if wrapped and bare and bare["ok_rps"]:
            costs.append((c, 1 - wrapped["ok_rps"] / bare["ok_rps"], _cpu(wrapped), _cpu(bare)))
    if costs:
        text = ", ".join(f"c={c}: {100 * cost:.0f}%" for c, cost, _, _ in costs)
        text += _cpu_range([1 - bare / wrapped for _, _, wrapped, bare in costs if wrapped and bare])
        add(
            "lastro middleware stack cost vs bare FastAPI hello (LOG_LEVEL=info)",
            "<= 15%",
            text,
            max(x for _, x, _, _ in costs) <= 0.15,
        )
    rss = [
        (system, results["systems"][system]["rss"]["max_mb"])
        for system in ORDER_SYSTEMS[1:]
        if "rss" in results["systems"].get(system, {})
    ]
    if results.get("start_workers"):
        rss.append((f"{START_WORKERS} workers, idle", results["start_workers"]["rss"]["max_mb"]))
    if rss:
        text = ", ".join(f"{system}: {mb:.0f} MB" for system, mb in rss)
        add("worker RSS, largest worker after load", "<= 80 MB", text, max(mb for _, mb in rss) <= 80)
    start = results.get("start_workers")
    if start:
        all_ready = start["all_workers_started_s"]
        text = f"{start['first_ready_s']:.2f} s to the first 200"
        if all_ready is not None:
            text += f", {all_ready:.2f} s until all {start['workers']} workers started"
        name = f"start -> ready, {start['workers']} workers (lastro SQLite)"
        add(name, "<= 2 s", text, start["first_ready_s"] <= 2)
    return rows


def _errors(found: dict[str, Any]) -> str:
    statuses = found.get("statuses") or {}
    detail = f" ({', '.join(f'{code}: {n}' for code, n in statuses.items())})" if statuses else ""
    return f"{found['non_2xx']}{detail} / {found['socket_errors']} / {found['locked']}"


def _limit_table(results: dict[str, Any]) -> list[str]:
    header = ["system", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors", "CPU ms/req"]
    rows = []
    for name, system in results["systems"].items():
        if system.get("kind") != "limit":
            continue
        for c in system["cells"]:
            cpu = _cpu(c)
            rows.append(
                [
                    *(name, c["connections"], _n(c["rps"]), _ms(c["p50_ms"]), _ms(c["p99_ms"])),
                    *(c["non_2xx"], c["socket_errors"], f"{cpu:.3f}" if cpu else "-"),
                ]
            )
    return ["### Limit (hello world, `lastro serve`, 2 workers)", "", *_table(header, rows), ""]


def _orders_tables(results: dict[str, Any]) -> list[str]:
    systems = [name for name in ORDER_SYSTEMS if name in results["systems"]]
    compared = systems[1:] if systems and systems[0] == "baseline" else []
    header = ["workload", "conns"]
    for name in systems:
        header += [f"{name} 2xx/s", "p50", "p99", "non-2xx / sock / locked"]
    header += [f"{name} vs baseline" for name in compared]
    rows, cpu_rows = [], []
    workloads = results.get("workloads", WORKLOADS)
    for workload in workloads:
        for c in results["connections"]:
            row: list[object] = [workload, c]
            found = {name: cell(results, name, workload, c) for name in systems}
            for x in found.values():
                if x is None:
                    row += ["-", "-", "-", "-"]
                else:
                    row += [_n(x["ok_rps"]), _ms(x["p50_ms"]), _ms(x["p99_ms"]), _errors(x)]
            base = found.get("baseline")
            for name in compared:
                x = found[name]
                row.append(f"{x['ok_rps'] / base['ok_rps']:.1f}x" if x and base and base["ok_rps"] else "-")
            rows.append(row)
            cpu_row: list[object] = [workload, c]
            cpu_row += [f"{_cpu(x):.3f}" if _cpu(x) else "-" for x in found.values()]
            for name in compared:
                mine, theirs = _cpu(found[name]), _cpu(base)
                cpu_row.append(f"{theirs / mine:.1f}x" if mine and theirs else "-")
            cpu_rows.append(cpu_row)
    lines = ["### Orders: baseline vs lastro (2 workers; latencies in ms)", "", *_table(header, rows), ""]
    if any(row[2:] != ["-"] * (len(row) - 2) for row in cpu_rows):
        header = ["workload", "conns", *(f"{name} CPU ms/req" for name in systems)]
        header += [f"{name} vs baseline" for name in compared]
        lines += [
            "### Worker CPU per request (user + system time of the workers during the run / requests)",
            "",
            *_table(header, cpu_rows),
            "",
        ]
    return lines


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    idle = profile.get("idle_samples_left_out", 0)
    shares = profile.get("worker_cpu_shares")
    split = f"; the workers' shares of CPU: {shares}" if shares else ""
    return [
        f"### Profile: one lastro SQLite worker, mixed at {PROFILE_CONNECTIONS} connections "
        f"(py-spy, {profile['samples']:,} samples, {idle:,} samples of blocked waits left out, "
        f"{profile['rps_while_sampled']:,.0f} req/s while sampled{split})",
        "",
        *_table(["cost centre", "% of samples"], list(profile["cost_centres_pct"].items())),
        "",
        *_table(
            ["top self-time lines", "%"],
            [[f"`{f['line']}`", f["pct"]] for f in profile.get("top_self_lines", [])],
        ),
        "",
    ]


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, {m['wrk']}; "
        f"{results['seed']:,} orders; {results['seconds']:g} s per run after {results['warmup']:g} s "
        f"warm-up; load average before / after: {results['load_before']} / {results['load_after']}.",
        "",
        *_limit_table(results),
        *_orders_tables(results),
    ]
    header = ["system", "start -> ready s", "worker RSS sum MB", "max MB", "PSS sum MB", "workers", "seed s"]
    rows = []
    for name, system in results["systems"].items():
        rss = system["rss"]
        pss = f"{rss['pss_sum_mb']:.0f}" if "pss_sum_mb" in rss else "-"
        rows.append(
            [
                *(name, f"{system['start_to_ready_s']:.2f}", f"{rss['sum_mb']:.0f}", f"{rss['max_mb']:.0f}"),
                *(pss, rss["workers"], system.get("seed_seconds", "-")),
            ]
        )
    lines += ["### Per system (RSS read after the loads)", "", *_table(header, rows), ""]
    start = results.get("start_workers")
    if start:
        lines += [
            f"Orders on SQLite with {start['workers']} workers: first 200 of /health/ready after "
            f"{start['first_ready_s']:.2f} s, all workers logged start-up complete after "
            f"{start['all_workers_started_s']} s; RSS per worker {start['rss']['per_worker_mb']} MB "
            f"(PSS {start['rss'].get('pss_per_worker_mb', '-')} MB).",
            "",
        ]
    rows = [
        [t["target"], t["bar"], t["measured"], "met" if t["met"] else "**missed**"] for t in targets(results)
    ]
    lines += ["### Targets", "", *_table(["target", "bar", "measured", ""], rows), ""]
    profile = results["systems"].get("lastro SQLite", {}).get("profile")
    if profile and "cost_centres_pct" in profile:
        lines += _profile_lines(profile)
    elif profile:
        lines += [f"Profile skipped: {profile.get('skipped')}", ""]
    return "\n".join(lines)
