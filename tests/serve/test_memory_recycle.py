"""MAX_WORKER_RSS_MB: a worker that grows past it is replaced gracefully, and no request fails."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.support.servers import serve, wait_for

RECYCLED = "worker over MAX_WORKER_RSS_MB: replacing it gracefully"


def test_a_leaking_worker_is_replaced_without_a_failed_request(tmp_path: Path) -> None:
    """One worker leaks 20 MiB a call past a 200 MiB limit: a fresh one takes over, every request is 200."""
    with serve(
        tmp_path,
        "tests.support.apps:leaky_app",
        "--factory",
        WORKERS="1",
        MAX_WORKER_RSS_MB="200",
        MONITOR_INTERVAL="0.1",
    ) as server:
        first = httpx.get(f"{server.url}/pid", timeout=10).json()["pid"]
        statuses: list[int] = []
        pids: set[int] = set()
        done = threading.Event()

        def keep_asking() -> None:
            with httpx.Client(base_url=server.url, timeout=20) as client:
                while not done.is_set():
                    response = client.get("/pid")
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        pids.add(response.json()["pid"])

        askers = [threading.Thread(target=keep_asking) for _ in range(4)]
        for asker in askers:
            asker.start()
        try:
            with httpx.Client(base_url=server.url, timeout=20) as client:
                for _ in range(20):
                    response = client.get("/leak", params={"mb": 20})
                    statuses.append(response.status_code)
                    if server.events(RECYCLED):
                        break
            wait_for(lambda: len(pids - {first}) >= 1, timeout=30)
        finally:
            done.set()
            for asker in askers:
                asker.join()
        (line,) = server.events(RECYCLED)
        assert line["pid"] == first
        assert line["rss_mb"] > 200
        assert set(statuses) == {200}
