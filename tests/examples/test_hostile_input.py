"""Hostile input against the orders service under a real `lastro serve`: 4xx problem+json, no 5xx, no hang.

Each case is sent the way an attacker would, over a real socket where a client library would tidy it up,
and each answer must be a client error in `application/problem+json` within seconds. What the bodies ask
to change (an order's id, version or tenant) is checked on the stored order afterwards.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.examples.conftest import JSON_ORDER, SECRET_KEY, Api, orders_service
from tests.support.servers import ServeProcess

MB = 1024 * 1024
ANSWER_WITHIN = 20.0  # seconds: a hang fails here, not at the suite's timeout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("hostile")
    settings = {
        "RATE_LIMIT_DEFAULT": "off",
        "RATE_LIMIT_LOGIN": "off",
        "IMAGES_DIR": str(directory / "images"),
    }
    with orders_service("sqlite", directory, **settings) as service:
        yield service


def problem(status: int, headers: dict[str, str], body: bytes) -> int:
    """The status of a 4xx problem+json answer; fails on anything else."""
    assert 400 <= status < 500, (status, body[:300])
    assert headers["content-type"] == "application/problem+json", (headers, body[:300])
    assert json.loads(body)["status"] == status
    return status


def answered(response: httpx.Response) -> int:
    return problem(response.status_code, dict(response.headers), response.content)


def raw_exchange(
    server: ServeProcess, head: bytes, body_chunks: Iterable[bytes] = ()
) -> tuple[int, dict[str, str], bytes]:
    """Send `head` then the chunks (in a thread, so an early answer is read while sending); the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN) as sock:

        def send() -> None:
            try:
                sock.sendall(head)
                for chunk in body_chunks:
                    sock.sendall(chunk)
            except OSError:
                pass  # the server answered and closed before the whole body: what is being tested

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head_part.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, rest
            rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def _request_head(method: str, path: str, token: str | None, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- bodies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b'{"customer": "ACME", "items": [', b"\xff\xfe{}", b"null", b"[]", b"1e999999"]
)
def test_malformed_json_is_a_problem(api: Api, body: bytes) -> None:
    """Truncated, not UTF-8, null, a list or an endless number: 422, no order stored."""
    before = len(api.walk())
    response = api.post("/api/orders", content=body, headers={"Content-Type": "application/json"})
    assert answered(response) == 422
    assert len(api.walk()) == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_wrong_content_type_is_a_problem(api: Api, content_type: str) -> None:
    """A JSON route given another media type: a 4xx problem (415 or 422), never parsed as something else."""
    response = api.post("/api/orders", content=json.dumps(JSON_ORDER), headers={"Content-Type": content_type})
    assert answered(response) in (415, 422)


def test_a_50_mb_body_with_content_length_is_413(server: ServeProcess, api: Api) -> None:
    """Refused by its Content-Length, before the body is read."""
    head = _request_head(
        "POST",
        "/api/orders",
        api.token,
        **{"Content-Type": "application/json", "Content-Length": str(50 * MB)},
    )
    started = time.monotonic()
    status, headers, body = raw_exchange(server, head, iter([b"x" * MB] * 50))
    assert problem(status, headers, body) == 413
    assert time.monotonic() - started < ANSWER_WITHIN


def test_a_50_mb_chunked_body_is_413(server: ServeProcess, api: Api) -> None:
    """No Content-Length: counted as it arrives, refused once past MAX_BODY_BYTES."""
    head = _request_head(
        "POST",
        "/api/orders",
        api.token,
        **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    chunk = f"{MB:x}\r\n".encode() + b"x" * MB + b"\r\n"
    status, headers, body = raw_exchange(server, head, iter([chunk] * 50 + [b"0\r\n\r\n"]))
    assert problem(status, headers, body) == 413


def test_10000_multipart_parts_are_refused(api: Api) -> None:
    """Past MAX_MULTIPART_PARTS the form is refused with a 4xx problem, not parsed to the end."""
    boundary = "hostileboundary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
    body = (part * 10_000 + f"--{boundary}--\r\n").encode()
    order_id = api.create().json()["id"]
    response = api.post(
        f"/api/orders/{order_id}/images",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answered(response) in (400, 413, 422)


@pytest.mark.parametrize(
    ("field", "value"),
    [("customer", "x" * MB), ("notes", "x" * MB), ("sku", "x" * MB)],
    ids=["customer", "notes", "sku"],
)
def test_a_1_mb_string_is_422(api: Api, field: str, value: str) -> None:
    """A 1 MB string where at most a few hundred characters fit: 422, nothing stored."""
    order: dict[str, Any] = json.loads(json.dumps(JSON_ORDER))
    if field == "sku":
        order["items"][0]["sku"] = value
    else:
        order[field] = value
    assert answered(api.post("/api/orders", json=order)) == 422


@pytest.mark.parametrize(
    "order",
    [{**JSON_ORDER, "customer": "A\u0000B"}, {**JSON_ORDER, "notes": "\u0000"}],
    ids=["customer", "notes"],
)
def test_nul_in_a_body_is_422(api: Api, order: dict[str, Any]) -> None:
    """A NUL character in a stored string (PostgreSQL text cannot hold one): 422."""
    assert answered(api.post("/api/orders", json=order)) == 422


def test_nul_in_a_query_is_422(api: Api) -> None:
    """A NUL in ?customer=: 422."""
    assert answered(api.get("/api/orders", params={"customer": "a\u0000b"})) == 422


@pytest.mark.parametrize("field", ["id", "version", "tenant_id"])
def test_unknown_fields_in_a_new_order_are_refused(api: Api, field: str) -> None:
    """`id`, `version` or `tenant_id` in a new order: 422, and no order is stored."""
    before = len(api.walk())
    assert answered(api.post("/api/orders", json={**JSON_ORDER, field: 999})) == 422
    assert len(api.walk()) == before


@pytest.mark.parametrize("field", ["id", "version", "tenant_id"])
def test_unknown_fields_in_a_patch_are_never_applied(api: Api, field: str) -> None:
    """The same fields in a PATCH: 422, and the stored order keeps its id, version and tenant."""
    created = api.create().json()
    location = f"/api/orders/{created['id']}"
    response = api.patch(location, json={"notes": "changed", field: 999}, headers={"If-Match": '"1"'})
    assert answered(response) == 422
    stored = api.get(location).json()
    assert (stored["id"], stored["version"], stored["notes"]) == (created["id"], 1, None)


# --- query, headers and the request itself ----------------------------------------------------------------


@pytest.mark.parametrize("limit", ["1000000", "99999999999999999999999"])
def test_a_huge_page_size_is_422(api: Api, limit: str) -> None:
    """limit far past MAX_PAGE_SIZE: 422 naming the cap, not a giant page."""
    assert answered(api.get("/api/orders", params={"limit": limit})) == 422


def test_a_64_kb_header_is_431(server: ServeProcess, api: Api) -> None:
    """A 64 KB header: 431 problem+json from below the application."""
    head = _request_head("GET", "/api/orders", api.token, **{"X-Padding": "a" * 65536})
    assert problem(*raw_exchange(server, head)) == 431


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /api/orders HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    ],
    ids=["request-line", "header-line", "nul-in-header"],
)
def test_a_request_that_is_not_http_is_400(server: ServeProcess, request_bytes: bytes) -> None:
    """Not HTTP/1.1: 400 problem+json from below the application (uvicorn's own is text/plain)."""
    assert problem(*raw_exchange(server, request_bytes)) == 400


# --- tokens -------------------------------------------------------------------------------------------------


def _claims(api: Api, **changes: Any) -> dict[str, Any]:
    assert api.token is not None
    claims: dict[str, Any] = jwt.decode(api.token, options={"verify_signature": False})
    return {**claims, **changes}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize("kind", ["alg-none", "expired", "wrong-signature", "garbage"])
def test_a_forged_token_is_401(server: ServeProcess, api: Api, kind: str) -> None:
    """Unsigned (alg=none), expired, signed with another key, or not a JWT at all: 401 problem+json."""
    now = int(time.time())
    tokens = {
        "alg-none": _unsigned(_claims(api, is_admin=True, adm=True)),
        "expired": jwt.encode(_claims(api, iat=now - 7200, exp=now - 60), SECRET_KEY, algorithm="HS256"),
        "wrong-signature": jwt.encode(_claims(api), "not the service's key " * 3, algorithm="HS256"),
        "garbage": "a" * 5000,
    }
    response = httpx.get(f"{server.url}/api/orders", headers={"Authorization": f"Bearer {tokens[kind]}"})
    assert answered(response) == 401
