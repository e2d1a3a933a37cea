"""Races through a real `lastro serve`: one ETag for 20 writers, one Idempotency-Key for 50 creates."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.examples.conftest import JSON_ORDER, Api, is_problem


def race(
    api: Api, count: int, request: Callable[[httpx.Client, int], httpx.Response]
) -> list[httpx.Response]:
    """`count` requests on `count` connections, released together once every connection is open."""
    start = threading.Barrier(count, timeout=20)
    headers = {"Authorization": f"Bearer {api.token}"}

    def one(number: int) -> httpx.Response:
        with httpx.Client(base_url=str(api.client.base_url), headers=headers, timeout=30) as client:
            client.get("/health/live")  # open the connection before the start
            start.wait()
            return request(client, number)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_twenty_patches_with_one_etag_let_exactly_one_win(admin: Api) -> None:
    """20 concurrent PATCHes with the same If-Match: exactly one 200, the other 19 get 412."""
    location = admin.create().headers["location"]

    def patch(client: httpx.Client, number: int) -> httpx.Response:
        return client.patch(location, json={"notes": f"writer {number}"}, headers={"If-Match": '"1"'})

    responses = race(admin, 20, patch)
    assert Counter(response.status_code for response in responses) == {200: 1, 412: 19}
    assert all(is_problem(response, 412) for response in responses if response.status_code != 200)
    winner = next(response.json() for response in responses if response.status_code == 200)
    assert admin.get(location).json() == winner
    assert winner["version"] == 2


def test_twenty_deletes_with_one_etag_let_exactly_one_win(admin: Api) -> None:
    """20 concurrent DELETEs with the same If-Match: exactly one 204, the others 412 or 404, none 5xx."""
    location = admin.create().headers["location"]

    def delete(client: httpx.Client, number: int) -> httpx.Response:
        return client.delete(location, headers={"If-Match": '"1"'})

    statuses = Counter(response.status_code for response in race(admin, 20, delete))
    assert statuses[204] == 1
    assert set(statuses) <= {204, 404, 412}


@pytest.fixture(scope="module")
def idempotent_race(admin: Api) -> Iterator[tuple[Api, str, list[httpx.Response]]]:
    """50 concurrent POSTs of one body with one Idempotency-Key, in a tenant of their own."""
    api = admin.new_tenant("idempotency")
    key = f"key-{uuid.uuid4().hex}"

    def create(client: httpx.Client, number: int) -> httpx.Response:
        return client.post("/api/orders", json=JSON_ORDER, headers={"Idempotency-Key": key})

    yield api, key, race(api, 50, create)
    api.close()


def _created(responses: list[httpx.Response]) -> list[dict[str, Any]]:
    return [response.json() for response in responses if response.status_code == 201]


def test_one_idempotency_key_creates_exactly_one_order(
    idempotent_race: tuple[Api, str, list[httpx.Response]],
) -> None:
    """After 50 concurrent POSTs with one key, the tenant has exactly one order."""
    api, _, responses = idempotent_race
    assert [order["id"] for order in api.walk()] == [_created(responses)[0]["id"]]


def test_every_racing_post_gets_the_same_201_or_409_in_progress(
    idempotent_race: tuple[Api, str, list[httpx.Response]],
) -> None:
    """Each of the 50 answers is the same 201 (same body) or a 409 problem saying the key is in progress."""
    _, _, responses = idempotent_race
    created = _created(responses)
    assert created
    assert all(order == created[0] for order in created)
    others = [response for response in responses if response.status_code != 201]
    assert all(
        is_problem(response, 409) and "in progress" in response.json()["detail"] for response in others
    )


def test_a_retry_after_the_race_replays_the_201(
    idempotent_race: tuple[Api, str, list[httpx.Response]],
) -> None:
    """The same key and body once the race is over: 201 with the first order's id and body."""
    api, key, responses = idempotent_race
    retry = api.post("/api/orders", json=JSON_ORDER, headers={"Idempotency-Key": key})
    assert retry.status_code == 201
    assert retry.json() == _created(responses)[0]
    assert retry.headers["location"] == f"/api/orders/{retry.json()['id']}"


def test_the_same_key_with_another_body_gets_422(
    idempotent_race: tuple[Api, str, list[httpx.Response]],
) -> None:
    """The same key with a different body: 422 problem+json, and still one order."""
    api, key, _ = idempotent_race
    response = api.post(
        "/api/orders", json={**JSON_ORDER, "customer": "someone else"}, headers={"Idempotency-Key": key}
    )
    assert is_problem(response, 422)
    assert len(api.walk()) == 1


def test_an_idempotency_key_is_scoped_to_its_tenant(
    idempotent_race: tuple[Api, str, list[httpx.Response]], tenant: Api
) -> None:
    """Another tenant using the same key gets an order of its own."""
    _, key, responses = idempotent_race
    response = tenant.post("/api/orders", json=JSON_ORDER, headers={"Idempotency-Key": key})
    assert response.status_code == 201
    assert response.json()["id"] != _created(responses)[0]["id"]
