"""The orders API through a real `lastro serve`: tokens, tenants, ETags, status rules, lists, bad input."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.examples.conftest import JSON_ORDER, SECRET_KEY, Api, is_problem
from tests.support.servers import ServeProcess, wait_for

# --- tokens ---------------------------------------------------------------------------------------------


def _claims(admin: Api, **changes: Any) -> dict[str, Any]:
    """The claims of the admin's real token, with `changes`."""
    assert admin.token is not None
    claims: dict[str, Any] = jwt.decode(admin.token, options={"verify_signature": False})
    return {**claims, **changes}


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def _get_orders(server: ServeProcess, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{server.url}/api/orders", headers=headers)


def _refused(response: httpx.Response) -> bool:
    return is_problem(response, 401) and response.headers["www-authenticate"] == "Bearer"


def test_a_token_signed_with_the_secret_key_is_accepted(orders_server: ServeProcess, admin: Api) -> None:
    """Control for the forgeries below: a token made here with SECRET_KEY and a future exp works."""
    token = jwt.encode(_claims(admin, exp=int(time.time()) + 600), SECRET_KEY, algorithm="HS256")
    assert _get_orders(orders_server, token).status_code == 200


def test_missing_token_gets_401(orders_server: ServeProcess) -> None:
    """No Authorization header: 401 problem+json with WWW-Authenticate: Bearer."""
    assert _refused(_get_orders(orders_server, None))


def test_expired_token_gets_401(orders_server: ServeProcess, admin: Api) -> None:
    """A correctly signed token whose exp is in the past: 401 problem+json."""
    past = int(time.time()) - 60
    token = jwt.encode(_claims(admin, iat=past - 3600, exp=past), SECRET_KEY, algorithm="HS256")
    assert _refused(_get_orders(orders_server, token))


def test_tampered_signature_gets_401(orders_server: ServeProcess, admin: Api) -> None:
    """A real token with one character of its signature changed: 401 problem+json."""
    assert admin.token is not None
    head, payload, signature = admin.token.split(".")
    middle = len(signature) // 2
    changed = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    assert _refused(_get_orders(orders_server, f"{head}.{payload}.{changed}"))


def test_tampered_payload_gets_401(orders_server: ServeProcess, admin: Api) -> None:
    """A real token's signature on claims moved to another tenant: 401 problem+json."""
    assert admin.token is not None
    head, _, signature = admin.token.split(".")
    payload = _b64(_claims(admin, tid=_claims(admin)["tid"] + 1))
    assert _refused(_get_orders(orders_server, f"{head}.{payload}.{signature}"))


def test_unsigned_alg_none_token_gets_401(orders_server: ServeProcess, admin: Api) -> None:
    """A token with alg=none and no signature: 401 problem+json."""
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(admin))}."
    assert _refused(_get_orders(orders_server, token))


def test_wrong_password_gets_401(orders_server: ServeProcess) -> None:
    """POST /api/auth/token with a wrong password: 401 problem+json."""
    response = httpx.post(
        f"{orders_server.url}/api/auth/token", data={"username": "admin", "password": "nope"}
    )
    assert _refused(response)


# --- tenants --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stranger(admin: Api) -> Iterator[Api]:
    """A user of a second tenant, created through the admin API."""
    api = admin.new_tenant("stranger")
    yield api
    api.close()


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_another_tenant_gets_404_for_an_order(admin: Api, stranger: Api, method: str) -> None:
    """A user of another tenant gets 404 for tenant default's order, which stays as it was."""
    order = admin.create().json()
    options: dict[str, Any] = {"headers": {"If-Match": '"1"'}}
    if method == "PATCH":
        options["json"] = {"status": "cancelled"}
    response = stranger.request(method, f"/api/orders/{order['id']}", **options)
    assert is_problem(response, 404)
    assert admin.get(f"/api/orders/{order['id']}").json() == order


def test_a_non_admin_cannot_create_tenants(stranger: Api) -> None:
    """The admin API refuses an ordinary user with 403 problem+json."""
    assert is_problem(stranger.post("/api/admin/tenants", json={"name": "nope"}), 403)


# --- one order ------------------------------------------------------------------------------------------


def test_create_answers_201_with_location_etag_and_the_order(admin: Api) -> None:
    """POST answers 201, Location of the new order, ETag "1", and every field of the order."""
    response = admin.post("/api/orders", json=JSON_ORDER)
    order = response.json()
    assert response.status_code == 201
    assert response.headers["location"] == f"/api/orders/{order['id']}"
    assert response.headers["etag"] == '"1"'
    assert set(order) == {
        "id", "customer", "items", "total", "status", "notes", "version", "created_at", "updated_at"
    }  # fmt: skip
    assert (order["customer"], order["items"], order["total"]) == ("ACME", JSON_ORDER["items"], 19.0)
    assert (order["status"], order["version"], order["notes"]) == ("received", 1, None)
    assert order["created_at"] == order["updated_at"]


def test_get_answers_the_order_with_its_etag(admin: Api) -> None:
    """GET of a created order answers the same document, byte for byte, and its ETag."""
    created = admin.create()
    response = admin.get(created.headers["location"])
    assert response.status_code == 200
    assert response.content == created.content
    assert response.headers["etag"] == '"1"'


def test_get_of_an_unknown_order_gets_404(admin: Api) -> None:
    """GET of an id that does not exist: 404 problem+json."""
    assert is_problem(admin.get("/api/orders/999999999"), 404)


@pytest.mark.parametrize("order_id", [2**31, 2**63, 10**30])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_id_beyond_the_database_integers_gets_404(admin: Api, method: str, order_id: int) -> None:
    """An order id no INTEGER column can hold is simply not found (it was a 500)."""
    options: dict[str, Any] = {"headers": {"If-Match": '"1"'}}
    if method == "PATCH":
        options["json"] = {"notes": "x"}
    assert is_problem(admin.request(method, f"/api/orders/{order_id}", **options), 404)


def test_patch_without_if_match_gets_428(admin: Api) -> None:
    """PATCH without If-Match: 428 problem+json, the order unchanged."""
    location = admin.create().headers["location"]
    assert is_problem(admin.patch(location, json={"notes": "x"}), 428)
    assert admin.get(location).json()["version"] == 1


def test_patch_with_a_stale_etag_gets_412(admin: Api) -> None:
    """PATCH with the ETag of a version that was since replaced: 412 problem+json."""
    location = admin.create().headers["location"]
    assert admin.patch(location, json={"notes": "first"}, headers={"If-Match": '"1"'}).status_code == 200
    stale = admin.patch(location, json={"notes": "second"}, headers={"If-Match": '"1"'})
    assert is_problem(stale, 412)
    assert admin.get(location).json()["notes"] == "first"


@pytest.mark.parametrize(
    "if_match",
    ['"٣"'.encode(), b'"\xb2"', b'"' + b"9" * 19 + b'"', b'"' + b"9" * 5000 + b'"', b'"1" "2"', b"1"],
    ids=["arabic-indic-digit", "superscript-two", "past-64-bits", "5000-digits", "no-comma", "unquoted"],
)
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_an_if_match_that_names_no_version_gets_412(admin: Api, method: str, if_match: bytes) -> None:
    """An If-Match of Unicode digits, endless digits or broken syntax: 412, the order unchanged (was 500)."""
    location = admin.create().headers["location"]
    options: dict[str, Any] = {"headers": {"If-Match": if_match}}
    if method == "PATCH":
        options["json"] = {"notes": "x"}
    assert is_problem(admin.request(method, location, **options), 412)
    assert admin.get(location).json()["version"] == 1


def _move(admin: Api, location: str, *statuses: str) -> httpx.Response:
    """PATCH the order through `statuses`, each with the ETag the previous answer gave; the last answer."""
    response = admin.get(location)
    for status in statuses:
        response = admin.patch(
            location, json={"status": status}, headers={"If-Match": response.headers["etag"]}
        )
        assert response.status_code == 200, response.text
    return response


def test_skipping_a_status_gets_409(admin: Api) -> None:
    """received → delivered skips production: 409 problem+json."""
    location = admin.create().headers["location"]
    response = admin.patch(location, json={"status": "delivered"}, headers={"If-Match": '"1"'})
    assert is_problem(response, 409)
    assert admin.get(location).json()["status"] == "received"


def test_status_goes_from_received_to_delivered(admin: Api) -> None:
    """received → in_production → ready → delivered, one version and ETag per step."""
    location = admin.create().headers["location"]
    response = _move(admin, location, "in_production", "ready", "delivered")
    assert (response.json()["status"], response.json()["version"]) == ("delivered", 4)
    assert response.headers["etag"] == '"4"'


@pytest.mark.parametrize("before", [(), ("in_production",), ("in_production", "ready")])
def test_cancel_before_delivery_is_allowed(admin: Api, before: tuple[str, ...]) -> None:
    """An order that is received, in production or ready can be cancelled."""
    location = admin.create().headers["location"]
    assert _move(admin, location, *before, "cancelled").json()["status"] == "cancelled"


def test_cancel_after_delivery_gets_409(admin: Api) -> None:
    """A delivered order cannot be cancelled: 409 problem+json."""
    location = admin.create().headers["location"]
    etag = _move(admin, location, "in_production", "ready", "delivered").headers["etag"]
    response = admin.patch(location, json={"status": "cancelled"}, headers={"If-Match": etag})
    assert is_problem(response, 409)
    assert admin.get(location).json()["status"] == "delivered"


def test_delete_answers_204_then_get_404(admin: Api) -> None:
    """DELETE answers 204 with no body; the order is then 404."""
    location = admin.create().headers["location"]
    response = admin.delete(location)
    assert (response.status_code, response.content) == (204, b"")
    assert is_problem(admin.get(location), 404)


# --- lists ----------------------------------------------------------------------------------------------


def _ids(orders: list[dict[str, Any]]) -> list[int]:
    return [order["id"] for order in orders]


def test_list_filters_by_status(tenant: Api) -> None:
    """?status= returns only the orders in that status, newest first."""
    first, second, third = (tenant.create().json() for _ in range(3))
    _move(tenant, f"/api/orders/{second['id']}", "in_production")
    _move(tenant, f"/api/orders/{third['id']}", "cancelled")
    assert _ids(tenant.walk(status="received")) == [first["id"]]
    assert _ids(tenant.walk(status="in_production")) == [second["id"]]
    assert _ids(tenant.walk(status="cancelled")) == [third["id"]]


def test_list_filters_by_customer(tenant: Api) -> None:
    """?customer= returns only that customer's orders, newest first."""
    bob = [tenant.create(customer="Bob").json()["id"] for _ in range(2)]
    tenant.create(customer="Alice")
    assert _ids(tenant.walk(customer="Bob")) == bob[::-1]


def test_list_filters_by_creation_time(tenant: Api) -> None:
    """?created_from= is inclusive and ?created_to= exclusive, on created_at."""
    orders = [tenant.create().json() for _ in range(4)]
    window = tenant.walk(created_from=orders[1]["created_at"], created_to=orders[3]["created_at"])
    assert _ids(window) == [orders[2]["id"], orders[1]["id"]]


@pytest.mark.parametrize(
    ("created_from", "created_to"),
    [("0001-01-01T00:00:00+01:00", None), (None, "9999-12-31T23:59:59-01:00")],
    ids=["before-year-1-in-utc", "after-year-9999-in-utc"],
)
def test_time_bounds_past_the_calendar_in_utc_bound_nothing(
    tenant: Api, created_from: str | None, created_to: str | None
) -> None:
    """A bound that falls outside years 1-9999 once in UTC leaves every order in the list (was 500)."""
    created = tenant.create().json()["id"]
    bounds = {name: value for name, value in [("created_from", created_from), ("created_to", created_to)]}
    response = tenant.get("/api/orders", params={key: value for key, value in bounds.items() if value})
    assert response.status_code == 200, response.text
    assert _ids(response.json()["items"]) == [created]


def test_list_does_not_show_deleted_orders(tenant: Api) -> None:
    """A deleted order is no longer listed."""
    kept, gone = tenant.create().json(), tenant.create().json()
    assert tenant.delete(f"/api/orders/{gone['id']}").status_code == 204
    assert _ids(tenant.walk()) == [kept["id"]]


@pytest.fixture(scope="module")
def crowded(admin: Api) -> Iterator[tuple[Api, list[int]]]:
    """A tenant with 205 orders (more than one page can hold), and their ids."""
    api = admin.new_tenant("crowded")
    ids = [api.create(customer=f"crowd-{n}").json()["id"] for n in range(205)]
    yield api, ids
    api.close()


def test_a_page_holds_up_to_max_page_size(crowded: tuple[Api, list[int]]) -> None:
    """?limit=200 (the service's MAX_PAGE_SIZE) answers 200 orders, with a cursor to the rest."""
    api, _ = crowded
    response = api.get("/api/orders", params={"limit": 200})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 200
    assert response.json()["next_cursor"] is not None


def test_a_page_defaults_to_50(crowded: tuple[Api, list[int]]) -> None:
    """Without ?limit= a page holds 50 orders."""
    api, _ = crowded
    assert len(api.get("/api/orders").json()["items"]) == 50


@pytest.mark.parametrize("limit", [201, 1_000_000])
def test_a_limit_over_max_page_size_gets_422(admin: Api, limit: int) -> None:
    """A page larger than MAX_PAGE_SIZE is refused with 422 problem+json naming the cap, not cut short."""
    response = admin.get("/api/orders", params={"limit": limit})
    assert is_problem(response, 422)
    assert response.json()["errors"][0]["loc"] == ["query", "limit"]
    assert "200 (MAX_PAGE_SIZE)" in response.json()["errors"][0]["msg"]


def _more_than(items: list[int], count: int) -> Callable[[], bool]:
    return lambda: len(items) > count


def test_cursor_walk_with_concurrent_inserts_sees_every_order_once(crowded: tuple[Api, list[int]]) -> None:
    """Walking the pages while orders are inserted neither skips nor repeats an order that existed before."""
    api, _ = crowded
    existing = set(_ids(api.walk()))
    inserted: list[int] = []
    stop = threading.Event()

    def insert() -> None:
        with Api(str(api.client.base_url), api.token) as writer:
            while not stop.is_set():
                inserted.append(writer.create(customer="during-walk").json()["id"])

    thread = threading.Thread(target=insert)
    thread.start()
    walked: list[int] = []
    try:
        cursor: str | None = None
        while True:
            wait_for(_more_than(inserted, len(inserted)))  # an insert between every two pages
            page = api.get(
                "/api/orders", params={"limit": 20, **({"cursor": cursor} if cursor else {})}
            ).json()
            walked += _ids(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        thread.join(20)
    assert len(inserted) > len(existing) // 20
    assert walked == sorted(set(walked), reverse=True)  # newest first, no order twice
    assert existing <= set(walked)


# --- bad input ------------------------------------------------------------------------------------------

ITEM = JSON_ORDER["items"][0]


@pytest.mark.parametrize(
    "body",
    [
        {**JSON_ORDER, "items": [{**ITEM, "quantity": 0}]},
        {**JSON_ORDER, "items": [{**ITEM, "unit_price": -1}]},
        {"items": JSON_ORDER["items"]},
        {**JSON_ORDER, "customer": "   "},
        {**JSON_ORDER, "items": []},
        {**JSON_ORDER, "surprise": True},
        {**JSON_ORDER, "items": [{**ITEM, "quantity": 3, "unit_price": 10_000_000}]},
        {**JSON_ORDER, "customer": "nul\u0000byte"},
        {**JSON_ORDER, "notes": "nul\u0000byte"},
    ],
    ids=[
        "quantity-0",
        "negative-price",
        "no-customer",
        "blank-customer",
        "no-items",
        "unknown-field",
        "total-over-the-limit",
        "nul-in-customer",
        "nul-in-notes",
    ],
)
def test_invalid_order_gets_422(admin: Api, body: dict[str, Any]) -> None:
    """An order that breaks a rule of the schema: 422 problem+json naming the errors."""
    response = admin.post("/api/orders", json=body)
    assert is_problem(response, 422)
    assert response.json()["errors"]


def test_malformed_json_gets_422(admin: Api) -> None:
    """A body that is not JSON at all: 422 problem+json, not a 500."""
    response = admin.post(
        "/api/orders", content=b'{"customer": ', headers={"Content-Type": "application/json"}
    )
    assert is_problem(response, 422)


def test_unknown_status_in_a_patch_gets_422(admin: Api) -> None:
    """PATCH to a status that does not exist: 422 problem+json."""
    location = admin.create().headers["location"]
    assert is_problem(admin.patch(location, json={"status": "lost"}, headers={"If-Match": '"1"'}), 422)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        base64.urlsafe_b64encode(b"x:12").decode(),
        "%%%",
        "A" * 101,
        base64.urlsafe_b64encode(b"o:" + b"9" * 30).decode(),
    ],
    ids=["garbage", "wrong-prefix", "not-base64", "too-long", "id-out-of-range"],
)
def test_bad_cursor_gets_422(admin: Api, cursor: str) -> None:
    """A cursor the API never returned: 422 problem+json, not a 500."""
    assert is_problem(admin.get("/api/orders", params={"cursor": cursor}), 422)


def test_nul_in_a_customer_filter_gets_422(admin: Api) -> None:
    """?customer= with a NUL character: 422 problem+json (PostgreSQL cannot compare it: it was a 500)."""
    assert is_problem(admin.get("/api/orders", params={"customer": "a\u0000b"}), 422)


def test_patch_to_a_total_over_the_limit_gets_422(admin: Api) -> None:
    """PATCH of items whose total no order may have: 422 problem+json, the order unchanged."""
    location = admin.create().headers["location"]
    items = [{**ITEM, "quantity": 1000, "unit_price": 9_999_999_999.99}]
    assert is_problem(admin.patch(location, json={"items": items}, headers={"If-Match": '"1"'}), 422)
    assert admin.get(location).json()["version"] == 1


def test_a_user_for_a_tenant_id_out_of_range_gets_404(admin: Api) -> None:
    """POST /api/admin/users naming a tenant id no INTEGER can hold: 404 problem+json (it was a 500)."""
    body = {"username": "nobody-here", "password": "long enough", "tenant_id": 10**30}
    assert is_problem(admin.post("/api/admin/users", json=body), 404)


@pytest.mark.parametrize("limit", ["0", "-5", "many"])
def test_bad_limit_gets_422(admin: Api, limit: str) -> None:
    """A limit below 1 or not a number: 422 problem+json."""
    assert is_problem(admin.get("/api/orders", params={"limit": limit}), 422)


# --- what the fuzzer found: the service answers as /openapi.json says ------------------------------------


@pytest.mark.parametrize("bound", ["0.5", "1700000000", "-1e3"])
def test_a_number_as_a_time_bound_is_422(admin: Api, bound: str) -> None:
    """created_from takes an RFC 3339 date-time, as documented, not seconds since 1970."""
    assert is_problem(admin.get("/api/orders", params={"created_from": bound}), 422)


@pytest.mark.parametrize("is_admin", [0, 1, "yes", "true"])
def test_is_admin_takes_only_true_or_false(admin: Api, is_admin: object) -> None:
    """A user whose is_admin is 0, 1 or a string: 422, never coerced to a boolean."""
    body = {"username": "strict-bool", "password": "long enough", "tenant_id": 1, "is_admin": is_admin}
    assert is_problem(admin.post("/api/admin/users", json=body), 422)


@pytest.mark.parametrize("name", ["\f", " \t "])
def test_a_blank_name_is_422(admin: Api, name: str) -> None:
    """A tenant name that is blank once stripped: 422, as the documented pattern says."""
    assert is_problem(admin.post("/api/admin/tenants", json={"name": name}), 422)


def test_get_of_the_base64_upload_path_is_405_allowing_post(admin: Api) -> None:
    """/images/base64 is no image id: GET there is 405 with `Allow: POST`, not a 422 about the id."""
    order_id = admin.create().json()["id"]
    response = admin.get(f"/api/orders/{order_id}/images/base64")
    assert is_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_a_405_allows_every_method_of_the_path(admin: Api) -> None:
    """PUT /api/orders: 405 allowing GET and POST, the two routes of that path."""
    response = admin.request("PUT", "/api/orders", json={})
    assert is_problem(response, 405)
    assert response.headers["allow"] == "GET, POST"
