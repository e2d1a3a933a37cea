"""The report of the orders benchmark: the targets met or missed, and the markdown tables, from the results
alone, so that `python -m benchmarks.run --report FILE` renders a saved run again.
"""

from __future__ import annotations

from typing import Any

from benchmarks.orders.profile import PROFILE_CONNECTIONS
from benchmarks.orders.systems import COMPARATOR_SYSTEMS, LASTRO_SYSTEMS, ORDER_SYSTEMS
from benchmarks.orders.targets import cell, cpu_ms, targets
from benchmarks.orders.workloads import WORKLOADS
from benchmarks.servers import _ms, _n, _table


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
            cpu = cpu_ms(c)
            rows.append(
                [
                    *(name, c["connections"], _n(c["rps"]), _ms(c["p50_ms"]), _ms(c["p99_ms"])),
                    *(c["non_2xx"], c["socket_errors"], f"{cpu:.3f}" if cpu else "-"),
                ]
            )
    return ["### Limit (hello world, `lastro serve`, 2 workers)", "", *_table(header, rows), ""]


def _ratios(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The (system, comparator) pairs the tables show as ratios: every lastro system against the baseline
    and the ceiling, and the ceiling against the baseline, each where both ran."""
    ran = set(results["systems"])
    pairs = [(name, comparator) for name in LASTRO_SYSTEMS for comparator in COMPARATOR_SYSTEMS]
    pairs.append(("ceiling", "baseline"))
    return [(name, comparator) for name, comparator in pairs if {name, comparator} <= ran]


def _ratio(ours: float | None, theirs: float | None, digits: int) -> str:
    return f"{ours / theirs:.{digits}f}x" if ours and theirs else "-"


def _orders_tables(results: dict[str, Any]) -> list[str]:
    systems = [name for name in ORDER_SYSTEMS if name in results["systems"]]
    pairs = _ratios(results)
    labels = [f"{name} vs {comparator}" for name, comparator in pairs]
    header = ["workload", "conns"]
    for name in systems:
        header += [f"{name} 2xx/s", "p50", "p99", "non-2xx / sock / locked"]
    header += labels
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
            cpu_row: list[object] = [workload, c]
            cpu_row += [f"{cpu_ms(x):.3f}" if cpu_ms(x) else "-" for x in found.values()]
            for name, comparator in pairs:
                ours, theirs = found.get(name), found.get(comparator)
                row.append(_ratio(ours and ours["ok_rps"], theirs and theirs["ok_rps"], 2))
                # Fewer CPU milliseconds per request is better: the comparator's over ours.
                cpu_row.append(_ratio(cpu_ms(theirs), cpu_ms(ours), 2))
            rows.append(row)
            cpu_rows.append(cpu_row)
    lines = [
        "### Orders: baseline, ceiling and lastro (2 workers; latencies in ms)",
        "",
        *_table(header, rows),
        "",
    ]
    if any(row[2:] != ["-"] * (len(row) - 2) for row in cpu_rows):
        header = ["workload", "conns", *(f"{name} CPU ms/req" for name in systems), *labels]
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
    stack = profile.get("stack_self_pct")
    split += f"; lastro's request stack: {stack}% of samples" if stack is not None else ""
    threads = profile.get("threads_pct")
    split += f"; in threads of their own: {threads}%" if threads is not None else ""
    workload = profile.get("workload", "mixed")
    return [
        f"### Profile: one {profile.get('system', 'lastro SQLite')} worker, {workload} at "
        f"{PROFILE_CONNECTIONS} connections "
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
    for system in ("lastro SQLite", "lastro PostgreSQL"):
        for key in ("profile", "profile_get", "profile_write"):
            profile = results["systems"].get(system, {}).get(key)
            if profile and "cost_centres_pct" in profile:
                lines += _profile_lines(profile)
            elif profile:
                lines += [f"Profile of {system} skipped: {profile.get('skipped')}", ""]
    return "\n".join(lines)
