"""The orders API under load: the scenario of the service's capacity report (docs/capacity/).

    lastro loadtest http://127.0.0.1:8000 --scenario examples/orders/loadtest.py

Every simulated user works in an open session, as people do during a working day: about once a second
(like a person at a screen) it lists orders, reads one by id, creates one with an Idempotency-Key, changes
one of its own with If-Match, and now and then deletes one. Reads outnumber writes 8 to 4.

The session is one account's (LOADTEST_USERNAME / LOADTEST_PASSWORD, by default the development
administrator `make run` creates, admin/admin), signed in once per load-generating process and shared by
its users. Signing in is deliberately slow (argon2): hundreds of sign-ins at each step's start would
measure the password hash, not the API (tests/examples/test_login_flood.py measures that on its own).

Every user comes from one address and signs in as one account, so the service's rate limits (per client IP
and per user: RATE_LIMIT_DEFAULT, RATE_LIMIT_LOGIN) would count the whole load as one client: run the
service with them raised for the test (docs/capacity/README.md shows how), or the report measures them.

lastro imports no module of examples/; this file is loaded by path, as any scenario of an application is.
It needs the loadtest extra (`pip install 'lastro[loadtest]'`).
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from urllib.parse import urlencode

from locust import FastHttpUser, between, task
from locust.contrib.fasthttp import FastResponse
from locust.exception import StopUser

__all__ = ["OrdersUser"]

ORDER = {
    "customer": "Load Test Ltd",
    "items": [{"sku": "A-1", "name": "Anvil", "quantity": 2, "unit_price": 9.5}],
}


class OrdersUser(FastHttpUser):
    wait_time = between(0.5, 1.5)
    network_timeout = 10.0  # an answer slower than this counts as a failure
    connection_timeout = 10.0

    token: str | None = None  # the session's, shared by the users of this process
    # Locust has patched threading with gevent by now: the users that start while the first signs in wait
    # for its token instead of each signing in too.
    signing_in = threading.Lock()

    def on_start(self) -> None:
        self.etags: dict[int, str] = {}  # this user's own orders: id -> ETag as last seen
        with OrdersUser.signing_in:
            if OrdersUser.token is None:
                OrdersUser.token = self._sign_in()
        self.auth = {"Authorization": f"Bearer {OrdersUser.token}"}

    def _sign_in(self) -> str:
        form = {
            "username": os.environ.get("LOADTEST_USERNAME", "admin"),
            "password": os.environ.get("LOADTEST_PASSWORD", "admin"),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        with self.client.post(
            "/api/auth/token", data=urlencode(form), headers=headers, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"login answered {response.status_code}")
                raise StopUser
            token: str = response.json()["access_token"]
            return token

    def _remember(self, order_id: int, response: FastResponse) -> None:
        etag = response.headers.get("ETag") if response.headers else None
        if isinstance(etag, str):
            self.etags[order_id] = etag

    @task(4)
    def list_orders(self) -> None:
        self.client.get("/api/orders?limit=20", headers=self.auth, name="/api/orders?limit=20")

    @task(4)
    def get_order(self) -> None:
        if not self.etags:
            return self.create_order()
        order_id = random.choice(list(self.etags))
        response = self.client.get(f"/api/orders/{order_id}", headers=self.auth, name="/api/orders/{id}")
        if response.status_code == 200:
            self._remember(order_id, response)
        return None

    @task(2)
    def create_order(self) -> None:
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex}
        response = self.client.post("/api/orders", json=ORDER, headers=headers)
        if response.status_code == 201:
            self._remember(response.json()["id"], response)

    @task(1)
    def update_order(self) -> None:
        if not self.etags:
            return
        order_id = random.choice(list(self.etags))
        response = self.client.request(
            "PATCH",
            f"/api/orders/{order_id}",
            json={"notes": f"checked {uuid.uuid4().hex[:8]}"},
            headers={**self.auth, "If-Match": self.etags[order_id]},
            name="/api/orders/{id}",
        )
        if response.status_code == 200:
            self._remember(order_id, response)

    @task(1)
    def delete_order(self) -> None:
        if len(self.etags) < 5:  # keep a few to read and change
            return
        order_id = random.choice(list(self.etags))
        etag = self.etags.pop(order_id)
        self.client.request(
            "DELETE",
            f"/api/orders/{order_id}",
            headers={**self.auth, "If-Match": etag},
            name="/api/orders/{id}",
        )
