"""A cluster of the orders service on one machine: three `lastro serve` nodes, each in a network namespace
of its own with 2 workers, on one PostgreSQL database and one Redis, behind a real nginx.

```text
 test ── nginx 127.0.0.1:<port> ──┬── node 1  10.x.y.11:8000  (namespace, hostname lastro-node-1)
                                  ├── node 2  10.x.y.12:8000
                                  └── node 3  10.x.y.13:8000
 nodes ── 10.x.y.1:5432 ── socat ── PostgreSQL 127.0.0.1:5432 (a database of the cluster's own)
       └─ 10.x.y.1:6379 ── socat ── Redis 127.0.0.1:6379 (keys under the cluster's SERVICE_NAME)
```

PostgreSQL and Redis listen on loopback only; a `socat` on the bridge's address forwards to each, so the
nodes reach the real servers and a partition (`Network.cut`) drops a node's packets on their way. nginx
runs the configuration `lastro deploy nginx` writes for the three upstreams. Everything the cluster made
goes at `close()`: processes, the database, the Redis keys, the namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from tests.support.databases import conninfo, create_database, drop_database
from tests.support.netns import Network, Node, missing
from tests.support.nginx import NginxProcess, wrap
from tests.support.process import ServerProcess, free_port, stop_all
from tests.support.servers import LASTRO, ORDERS, ORDERS_MIGRATIONS, ROOT, migrate

__all__ = ["PORT", "Cluster", "NodeProcess", "available", "record"]

PORT = 8000  # each node's, on its own address
POSTGRES = "postgresql+psycopg://postgres@{host}:5432/{database}"
SECRET_KEY = "cluster-tests-" + "k" * 40  # one for every node: a token issued by one is valid on all


class NodeProcess(ServerProcess):
    """`lastro serve` of the orders service inside a node's namespace."""

    ready_timeout = 60.0  # six workers start at once on two cores

    def __init__(self, node: Node, index: int, env: dict[str, str], log: Path) -> None:
        argv = node.exec_argv([LASTRO, "serve", ORDERS, "--factory"], hostname=f"lastro-node-{index}")
        super().__init__(argv, env, log, port=PORT)
        self.node, self.index = node, index
        self.host = node.address

    def kill(self) -> None:
        """Every process of the node at once (SIGKILL to its group): a crashed machine."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class Cluster:
    def __init__(self, directory: Path, settings: dict[str, str] | None = None, *, size: int = 3) -> None:
        self.directory = directory
        self.network = Network(size)
        self.service = f"lc{uuid.uuid4().hex[:10]}"
        self.database = f"lastro_cluster_{self.service}"
        self.settings = settings or {}
        self.nodes: list[NodeProcess] = []
        self.nginx: NginxProcess | None = None
        self._forwarders: list[subprocess.Popen[bytes]] = []

    # Start and stop.

    def open(self) -> Cluster:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self) -> None:
        self.network.open()
        host = self.network.host_address
        for port in (5432, 6379):
            self._forwarders.append(
                subprocess.Popen(
                    ["socat", f"TCP-LISTEN:{port},bind={host},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        create_database(self.database)
        migrate(
            self.env_for(None) | {"DATABASE_URL": POSTGRES.format(host="127.0.0.1", database=self.database)}
        )
        for index, node in enumerate(self.network.nodes, start=1):
            self.nodes.append(self._node(index, node))
        for process in self.nodes:
            process.wait_ready()
        self.nginx = self._nginx()

    def env_for(self, node: Node | None) -> dict[str, str]:
        host = self.network.host_address
        subnet = str(self.network.subnet)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("LASTRO_", "PYTEST_"))}
        env.update(
            {
                "ENVIRONMENT": "development",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "WORKERS": "2",
                "INSTANCES": str(self.network.size),
                "SERVICE_NAME": self.service,
                "SECRET_KEY": SECRET_KEY,
                "DATABASE_URL": POSTGRES.format(host=host, database=self.database),
                "REDIS_URL": f"redis://{host}:6379/0",
                "MIGRATIONS_DIR": str(ORDERS_MIGRATIONS),
                "TRUSTED_PROXIES": f"{host}/32",  # nginx, on the host's end of the bridge
                "HEALTH_NETWORKS": f"127.0.0.0/8,{subnet}",
                "METRICS_NETWORKS": f"127.0.0.0/8,{subnet}",
                "GRACEFUL_TIMEOUT": "10",
                # Two clusters may be up at once beside the rest of the suite, on one PostgreSQL server
                # with max_connections=100: 6 workers x (3 + 3 + a probe) = 42 connections each at most.
                "DB_POOL_SIZE": "3",
                "DB_MAX_OVERFLOW": "3",
                "RATE_LIMIT_DEFAULT": "1000000/minute",
                "RATE_LIMIT_LOGIN": "1000000/minute",
                "PYTHONPATH": str(ROOT),
            }
        )
        if node is not None:
            env["BIND"] = f"{node.address}:{PORT}"
            place = self.directory / node.name
            place.mkdir(exist_ok=True)
            env["TMPDIR"] = env["SHARED_MEMORY_DIR"] = str(place)
        env.update(self.settings)
        return env

    def _node(self, index: int, node: Node) -> NodeProcess:
        process = NodeProcess(node, index, self.env_for(node), self.directory / f"node-{index}.log")
        process.start()
        return process

    def _nginx(self) -> NginxProcess:
        port = free_port()
        output = self.directory / "nginx"
        upstreams = [arg for node in self.network.nodes for arg in ("--upstream", f"{node.address}:{PORT}")]
        subprocess.run(
            [
                LASTRO,
                "deploy",
                "nginx",
                *upstreams,
                "--listen",
                f"127.0.0.1:{port}",
                "--proxy-address",
                self.network.host_address,
                "--output",
                str(output),
            ],
            env=self.env_for(None),
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        nginx = NginxProcess(wrap(output, output / f"{self.service}.conf"), port)
        nginx.start()
        nginx.wait_ready()
        return nginx

    def restart(self, index: int) -> NodeProcess:
        """Start node `index` (from 1) again, after a kill or a stop; ready when this returns."""
        process = self._node(index, self.network.nodes[index - 1])
        self.nodes[index - 1] = process
        process.wait_ready()
        return process

    def close(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        with suppress(Exception):
            stop_all(self.nodes, timeout=15)
        for forwarder in self._forwarders:
            forwarder.kill()
            forwarder.wait()
        self.network.close()
        drop_database(self.database)
        with suppress(Exception), redis.Redis(host="127.0.0.1", port=6379) as client:
            keys = list(client.scan_iter(match=f"*{self.service}*"))
            if keys:
                client.delete(*keys)

    def __enter__(self) -> Cluster:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Clients.

    @property
    def url(self) -> str:
        """nginx, in front of every node."""
        assert self.nginx is not None
        return self.nginx.url

    def token(self) -> str:
        response = httpx.post(
            self.url + "/api/auth/token", data={"username": "admin", "password": "admin"}, timeout=10
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def postgres(self) -> psycopg.Connection[Any]:
        """A connection to the cluster's database, from the host (for what a test checks afterwards)."""
        return psycopg.connect(conninfo(self.database), autocommit=True)


def available() -> str | None:
    """Why the cluster cannot run here, or None."""
    reason = missing()
    if reason is None and shutil.which("socat") is None:
        reason = "`socat` is not installed (apt-get install socat)"
    return reason


def record(test: str, **figures: object) -> None:
    """Append a test's figures to the JSON-lines file `LASTRO_CLUSTER_RESULTS` names, if any: the numbers
    docs/scale-out.md quotes come from such a run."""
    path = os.environ.get("LASTRO_CLUSTER_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as results:
            results.write(json.dumps({"test": test, **figures}, default=str) + "\n")
