"""The nginx configuration `lastro deploy nginx` writes, run by a real nginx in front of two `lastro serve`
instances of the orders service that share one PostgreSQL database, all on loopback.

The API and the event socket are served through nginx. Under a steady stream of reads and idempotent
creates, one instance is stopped (SIGTERM), or killed outright with its workers: no read fails (nginx sends
it to the other instance), and every create the client saw acknowledged is stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import websockets

from tests.examples.conftest import JSON_ORDER, READY_TIMEOUT, SECRET_KEY, Api, fresh_database
from tests.support.nginx import NGINX, NginxProcess, wrap
from tests.support.servers import LASTRO, ORDERS, ROOT, ServeProcess, free_port, migrate, serve_env, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        NGINX is None, reason="nginx is not installed: `apt-get install -y nginx-light` (.ci/run does)"
    ),
]
logger = logging.getLogger(__name__)
READERS = 4
SERVED_AFTER = 100  # reads answered after the stop, through the remaining instance, before the load ends


class Cluster:
    """Two `lastro serve` instances of the orders service on fixed loopback ports, one database."""

    def __init__(self, directory: Path, database_url: str) -> None:
        self.directory = directory
        self.ports = [free_port(), free_port()]
        self.settings = {
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "SERVICE_NAME": "orders",
            "TRUSTED_PROXIES": "127.0.0.1",
            "DB_POOL_SIZE": "4",
            "DB_MAX_OVERFLOW": "2",
            "MAX_LOOP_LAG": "0",  # a loaded 2-core machine must not shed the test's own load
        }
        self.instances: list[ServeProcess | None] = [None, None]

    def env(self, index: int) -> dict[str, str]:
        own = self.directory / f"instance{index}"
        own.mkdir(exist_ok=True)
        bind = f"127.0.0.1:{self.ports[index]}"
        return serve_env(
            own, BIND=bind, MIGRATIONS_DIR=str(ROOT / "examples/orders/migrations"), **self.settings
        )

    def ensure_up(self) -> None:
        """Start every instance that is not running, all at once, and wait until each is ready."""
        started = []
        for index, server in enumerate(self.instances):
            if server is None or server.process.poll() is not None:
                log = self.directory / f"instance{index}" / f"serve-{uuid.uuid4().hex[:6]}.log"
                self.instances[index] = ServeProcess(log, [ORDERS, "--factory"], self.env(index))
                started.append(self.instances[index])
        for server in started:
            assert server is not None
            server.wait_ready(READY_TIMEOUT)

    def stop(self) -> None:
        for server in self.instances:
            if server is not None:
                server.stop()

    def deploy_nginx(self, listen: int) -> Path:
        """`lastro deploy nginx` with the instances' settings, as an operator runs it; the site's path."""
        output = self.directory / "nginx"
        args = [f"--upstream=127.0.0.1:{port}" for port in self.ports]
        result = subprocess.run(
            [LASTRO, "deploy", "nginx", *args, f"--listen=127.0.0.1:{listen}", f"--output={output}"],
            env=self.env(0),
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stderr == "", result.stderr  # nginx is trusted: no warning
        return output / "orders.conf"


@dataclass
class Front:
    cluster: Cluster
    nginx: NginxProcess
    admin: Api

    @property
    def url(self) -> str:
        return self.nginx.url


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """nginx, configured by `lastro deploy nginx`, in front of the two instances; the admin logged in."""
    directory = tmp_path_factory.mktemp("deploy-nginx")
    with fresh_database("postgres", directory) as url:
        cluster = Cluster(directory, url)
        migrate(cluster.env(0))
        try:
            cluster.ensure_up()
            port = free_port()
            site = cluster.deploy_nginx(port)
            with NginxProcess(wrap(site.parent, site), port, site=site) as nginx:
                admin = Api.login(nginx.url, "admin", "admin")
                yield Front(cluster, nginx, admin)
                admin.close()
        finally:
            cluster.stop()


@dataclass
class Load:
    """Readers of one order and a writer of idempotent creates, through nginx, until stopped."""

    url: str
    token: str
    order_id: int
    stop: threading.Event = field(default_factory=threading.Event)
    reads: int = 0
    failed_reads: list[str] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> order id
    write_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)
    logged_before: int = 0  # lines in nginx's access log before this load

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def read(self) -> None:
        with self.client() as client:
            while not self.stop.is_set():
                try:
                    response = client.get(f"/api/orders/{self.order_id}")
                    problem = (
                        None if response.status_code == 200 else f"{response.status_code} {response.text}"
                    )
                except httpx.HTTPError as error:
                    problem = repr(error)
                with self.lock:
                    self.reads += 1
                    if problem is not None:
                        self.failed_reads.append(problem)

    def write(self) -> None:
        """Create orders one after another; each is retried with its key until acknowledged, as a client
        told to by a 502 or a dropped connection would."""
        with self.client() as client:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                while True:
                    try:
                        response = client.post(
                            "/api/orders", json=JSON_ORDER, headers={"Idempotency-Key": key}
                        )
                    except httpx.HTTPError:
                        response = None
                    if response is not None and response.status_code == 201:
                        self.acknowledged[key] = response.json()["id"]
                        break
                    self.write_retries += 1
                    if self.stop.is_set() and response is not None and response.status_code != 409:
                        break  # not acknowledged: the client would still be retrying

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self.read) for _ in range(READERS)]
        self.threads.append(threading.Thread(target=self.write))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def served(self) -> int:
        with self.lock:
            return self.reads


def balanced(front: Front) -> None:
    """Wait until nginx sends requests to both instances again.

    nginx checks passively: an instance it found down is left alone for fail_timeout, and tried again by
    one request. Stopping the other one before that, as a rolling restart must not, leaves none.
    """
    front.cluster.ensure_up()
    expected = {f"127.0.0.1:{port}" for port in front.cluster.ports}
    start = len(front.nginx.access_lines())

    def both_answer() -> bool:
        httpx.get(f"{front.url}/health/live", timeout=10)
        lines = front.nginx.access_lines()[start:]
        return expected <= {tried[-1] for _, _, status, tried, _ in lines if status == 200}

    wait_for(both_answer, timeout=30, interval=0.1)


def under_load(front: Front, take_down: int, how: str) -> tuple[Load, Api]:
    """Reads and writes through nginx while instance `take_down` is stopped (`term`) or killed (`kill`)."""
    balanced(front)
    tenant = front.admin.new_tenant("deploy")
    order = tenant.create().json()
    server = front.cluster.instances[take_down]
    assert server is not None
    logged = len(front.nginx.access_lines())
    with Load(front.url, str(tenant.token), order["id"], logged_before=logged) as load:
        wait_for(lambda: load.served() >= 100 and len(load.acknowledged) >= 3, timeout=60)
        if how == "term":
            assert server.stop() == 0  # SIGTERM, and waits for the graceful exit
        else:
            os.killpg(server.process.pid, signal.SIGKILL)  # the supervisor and its workers, at once
            server.process.wait(10)
        after = load.served()
        wait_for(lambda: load.served() >= after + SERVED_AFTER and len(load.acknowledged) >= 6, timeout=60)
    return load, tenant


def assert_no_loss(front: Front, load: Load, tenant: Api, down: int) -> None:
    assert load.failed_reads == [], load.failed_reads[:5]
    # Both instances served before the stop: the reads did go through the one taken down.
    lines = front.nginx.access_lines()[load.logged_before :]
    answered = {tried[-1] for _, _, status, tried, _ in lines if status == 200}
    assert f"127.0.0.1:{front.cluster.ports[down]}" in answered
    stored = tenant.walk()
    ids = sorted(order["id"] for order in stored)
    acknowledged = sorted(set(load.acknowledged.values()))
    assert len(acknowledged) == len(load.acknowledged)  # one order per key, never two keys on one order
    # Every acknowledged create is stored, once; nothing else was stored but the first order.
    assert set(acknowledged) <= set(ids)
    assert len(ids) == len(acknowledged) + 1
    retried = [line for line in lines if len(line[3]) > 1]
    logger.info(
        "reads %d, retried by nginx %d, client write retries %d", load.reads, len(retried), load.write_retries
    )
    tenant.close()


def test_the_orders_api_is_served_through_nginx(front: Front) -> None:
    """Through nginx: log in, create an order, read it back, with lastro seeing the client's address."""
    front.cluster.ensure_up()
    created = front.admin.create(customer="through nginx")
    assert created.headers["location"].endswith(f"/api/orders/{created.json()['id']}")
    read = front.admin.get(f"/api/orders/{created.json()['id']}")
    assert read.status_code == 200
    assert read.json()["customer"] == "through nginx"
    assert read.headers["x-request-id"]  # nginx's $request_id, kept by lastro


def test_an_event_socket_works_through_nginx(front: Front) -> None:
    """A WebSocket to /api/orders/events through nginx receives the event of an order created after it."""
    front.cluster.ensure_up()
    socket_url = f"{front.url.replace('http', 'ws', 1)}/api/orders/events?token={front.admin.token}"

    async def listen() -> dict[str, object]:
        async with websockets.connect(socket_url, open_timeout=20) as socket:
            created = await asyncio.to_thread(front.admin.create, customer="evented")
            order_id = created.json()["id"]
            while True:
                event = json.loads(await asyncio.wait_for(socket.recv(), 20))
                if event.get("order_id") == order_id:
                    return dict(event)

    event = asyncio.run(listen())
    assert event["type"] == "order.created"


def test_a_graceful_stop_loses_no_request(front: Front) -> None:
    """SIGTERM to one instance under load: no read fails, every acknowledged create is stored once."""
    load, tenant = under_load(front, 1, "term")
    assert_no_loss(front, load, tenant, 1)


def test_a_stop_announced_to_nginx_reaches_no_stopping_instance(front: Front) -> None:
    """An instance marked `down` and nginx reloaded before its SIGTERM: nginx sends it nothing more, so no
    request meets its stop: none is retried by nginx, none answered 5xx."""
    balanced(front)
    site = front.nginx.site
    original = site.read_text()
    port = front.cluster.ports[0]
    tenant = front.admin.new_tenant("announced")
    order = tenant.create().json()
    load = Load(front.url, str(tenant.token), order["id"], logged_before=len(front.nginx.access_lines()))
    try:
        with load:
            wait_for(lambda: load.served() >= 50, timeout=60)
            site.write_text(original.replace(f"server 127.0.0.1:{port} ", f"server 127.0.0.1:{port} down "))
            front.nginx.signal(signal.SIGHUP)  # new workers with the new file; the old ones finish and go
            reloaded = len(front.nginx.access_lines())
            wait_for(lambda: only_the_other_since(front, port, reloaded, 100), timeout=60)
            stopped = len(front.nginx.access_lines())
            server = front.cluster.instances[0]
            assert server is not None
            assert server.stop() == 0
            after = load.served()
            wait_for(lambda: load.served() >= after + SERVED_AFTER, timeout=60)
    finally:
        site.write_text(original)
        front.nginx.signal(signal.SIGHUP)
    since_stop = front.nginx.access_lines()[stopped:]
    assert [line for line in since_stop if len(line[3]) > 1 or line[2] >= 500] == []
    assert all(f"127.0.0.1:{port}" not in line[3] for line in since_stop)
    # nginx's reload closes the clients' idle keep-alive connections (clients retry those); no read got an
    # HTTP error.
    assert [problem for problem in load.failed_reads if problem[:1].isdigit()] == []
    tenant.close()


def only_the_other_since(front: Front, port: int, start: int, count: int) -> bool:
    """The last `count` requests logged since line `start` all went to an instance other than `port`."""
    lines = front.nginx.access_lines()[start:]
    return len(lines) >= count and all(f"127.0.0.1:{port}" not in line[3] for line in lines[-count:])


def test_a_killed_instance_loses_no_read(front: Front) -> None:
    """SIGKILL to one instance and its workers under load: no read fails (nginx retries them on the
    other), and every create the client saw acknowledged is stored exactly once."""
    load, tenant = under_load(front, 0, "kill")
    assert_no_loss(front, load, tenant, 0)
