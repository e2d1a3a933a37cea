"""What the orders service serves is what its `/openapi.json` declares, through a real `lastro serve`.

A scripted session calls every JSON operation. Each 2xx body is validated against the schema the
operation declares for that status, made strict (no property the schema does not list), so a route
that hand-built its answer, dropped a field or added one would fail here.
"""

from __future__ import annotations

import base64
import copy
import re
import uuid
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.examples.conftest import JSON_ORDER, Api
from tests.support.servers import ServeProcess

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def _strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` on every object that lists its properties."""
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if "properties" in strict:
            strict.setdefault("additionalProperties", False)
        return strict
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


class Contract:
    """The declared 2xx JSON answers of one service, by (method, path template, status)."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        self.components = _strict(copy.deepcopy(openapi.get("components", {})))
        self.schemas: dict[tuple[str, str, int], Any] = {}
        for path, operations in openapi["paths"].items():
            for method, operation in operations.items():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {}).get("application/json")
                    if status.startswith("2") and content and content.get("schema"):
                        self.schemas[(method.upper(), path, int(status))] = content["schema"]
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, method: str, url: str, status: int) -> tuple[str, str, int]:
        for key in self.schemas:
            template = re.sub(r"\{[^/]+\}", "[^/]+", key[1])
            if key[0] == method and key[2] == status and re.fullmatch(template, url):
                return key
        raise AssertionError(f"{method} {url} answered {status}, which /openapi.json does not declare")

    def check(self, response: httpx.Response) -> None:
        """Validate one served response against its declared schema; raises with every violation."""
        request = response.request
        key = self.operation(request.method, request.url.path, response.status_code)
        assert response.headers["content-type"] == "application/json", response.headers
        schema = {**_strict(self.schemas[key]), "components": self.components}
        errors = [error.message for error in Draft202012Validator(schema).iter_errors(response.json())]
        assert not errors, (key, errors, response.text)
        self.checked.add(key)


@pytest.fixture(scope="module")
def contract(orders_server: ServeProcess) -> Contract:
    response = httpx.get(f"{orders_server.url}/openapi.json", timeout=20)
    assert response.status_code == 200
    return Contract(response.json())


@pytest.fixture(scope="module")
def session(admin: Api, contract: Contract) -> list[httpx.Response]:
    """Every JSON operation of the service once, as a client would call them; the 2xx responses."""
    served: list[httpx.Response] = []

    def call(api: Api, method: str, url: str, **options: Any) -> httpx.Response:
        response = api.request(method, url, **options)
        assert response.is_success, (method, url, response.status_code, response.text)
        served.append(response)
        return response

    name = f"schema-{uuid.uuid4().hex[:10]}"
    tenant_id = call(admin, "POST", "/api/admin/tenants", json={"name": name}).json()["id"]
    user = {"username": name, "password": uuid.uuid4().hex, "tenant_id": tenant_id}
    call(admin, "POST", "/api/admin/users", json=user)
    token = httpx.post(
        f"{admin.client.base_url}/api/auth/token",
        data={"username": name, "password": user["password"]},
        timeout=20,
    )
    assert token.status_code == 200
    served.append(token)
    with Api(str(admin.client.base_url), token.json()["access_token"]) as api:
        created = call(api, "POST", "/api/orders", json={**JSON_ORDER, "notes": "entregar às 7h"})
        keyed = {"Idempotency-Key": uuid.uuid4().hex}
        call(api, "POST", "/api/orders", json=JSON_ORDER, headers=keyed)
        call(api, "POST", "/api/orders", json=JSON_ORDER, headers=keyed)  # the replay
        location = created.headers["Location"]
        call(api, "GET", location)
        call(api, "PATCH", location, json={"status": "in_production"}, headers={"If-Match": "*"})
        call(api, "GET", "/api/orders", params={"limit": 1})
        page = call(api, "GET", "/api/orders", params={"limit": 1, "status": "received"}).json()
        call(api, "GET", "/api/orders", params={"limit": 1, "cursor": page["next_cursor"]})
        images = f"{location}/images"
        call(api, "POST", images, files={"file": ("photo.png", PNG, "image/png")})
        body = {"filename": "photo.png", "content_base64": base64.b64encode(PNG).decode()}
        call(api, "POST", f"{images}/base64", json=body)
        call(api, "GET", images)
        call(api, "GET", "/api/ping")
        call(api, "GET", "/health/live")
    return [response for response in served if response.headers["content-type"] == "application/json"]


def test_every_json_answer_matches_its_declared_schema(
    contract: Contract, session: list[httpx.Response]
) -> None:
    """Each 2xx JSON body validates, strictly, against the schema /openapi.json declares for it."""
    for response in session:
        contract.check(response)


def test_the_session_covers_every_declared_json_operation(
    contract: Contract, session: list[httpx.Response]
) -> None:
    """No declared 2xx JSON answer goes unchecked: a new route must join the session above."""
    for response in session:
        contract.check(response)
    assert set(contract.schemas) - contract.checked == set()


def test_an_idempotent_replay_is_the_first_answer(admin: Api) -> None:
    """A retry with the same Idempotency-Key gets the first status, ETag, Location and body, byte for byte."""
    keyed = {"Idempotency-Key": uuid.uuid4().hex}
    first = admin.post("/api/orders", json=JSON_ORDER, headers=keyed)
    again = admin.post("/api/orders", json=JSON_ORDER, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    for header in ("ETag", "Location", "Content-Type"):
        assert first.headers[header] == again.headers[header]
