"""What the orders service serves is what its `/openapi.json` declares, through a real `lastro serve`.

A scripted session calls every JSON operation. Each 2xx body is validated against the schema the
operation declares for that status, made strict (no property the schema does not list), so a route
that hand-built its answer, dropped a field or added one would fail here. A second session provokes
each error a route can answer; each must be a status the operation declares, as `application/problem+json`
with the declared schema (tests/examples/test_fuzz.py then generates thousands more).
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

from lastro.http.problem import PROBLEM_CONTENT_TYPE
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
        self.openapi = openapi

    def problem_answer(self, method: str, url: str, status: int) -> Any:
        """The problem+json answer the operation at `url` declares for `status`; fails if it declares none."""
        for path, operations in self.openapi["paths"].items():
            template = re.sub(r"\{[^/]+\}", "[^/]+", path)
            operation = operations.get(method.lower())
            if operation is not None and re.fullmatch(template, url):
                content = operation["responses"].get(str(status), {}).get("content", {})
                assert PROBLEM_CONTENT_TYPE in content, (method, path, status, "not declared")
                return operation["responses"][str(status)]
        raise AssertionError(f"no operation {method} {url}")

    def check_problem(self, response: httpx.Response) -> None:
        """A served problem answer is declared, with its content type, schema and required headers."""
        request = response.request
        answer = self.problem_answer(request.method, request.url.path, response.status_code)
        schema = answer["content"][PROBLEM_CONTENT_TYPE]["schema"]
        for name, header in answer.get("headers", {}).items():
            assert not header["required"] or name in response.headers, (request.url.path, name)
        assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE, response.headers
        # Not strict: RFC 9457 lets a service add members, and ValidationProblem extends Problem by allOf.
        validator = Draft202012Validator({**schema, "components": self.openapi["components"]})
        errors = [error.message for error in validator.iter_errors(response.json())]
        assert not errors, (request.method, request.url.path, errors, response.text)

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
    call(admin, "GET", "/api/admin/jobs", params={"limit": 5})
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
        call(api, "GET", f"{location}/audit")
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


@pytest.fixture(scope="module")
def failures(admin: Api) -> list[httpx.Response]:
    """Each problem the orders routes answer, provoked once."""
    with Api(str(admin.client.base_url)) as anonymous:
        user = admin.new_tenant("problems")
        location = admin.create().headers["location"]
        images = f"{location}/images"
        png = {"filename": "x.png", "content_base64": base64.b64encode(PNG).decode()}
        taken = {"name": "default"}
        served = [
            anonymous.get("/api/orders"),  # 401
            anonymous.post("/api/auth/token", data={"username": "admin", "password": "wrong"}),  # 401
            user.post("/api/admin/tenants", json={"name": "x"}),  # 403
            user.get("/api/admin/jobs"),  # 403
            admin.get("/api/admin/jobs", params={"limit": 0}),  # 422
            admin.post("/api/admin/tenants", json=taken),  # 409
            admin.post("/api/admin/users", json={"username": "u", "password": "p" * 8, "tenant_id": 10**9}),
            admin.get("/api/orders/999999999"),  # 404
            admin.get("/api/orders", params={"limit": 0}),  # 422
            admin.patch(location, json={"notes": "x"}),  # 428
            admin.patch(location, json={"notes": "x"}, headers={"If-Match": '"9"'}),  # 412
            admin.patch(location, json={"status": "delivered"}, headers={"If-Match": "*"}),  # 409
            admin.delete(location, headers={"If-Match": '"9"'}),  # 412
            admin.post(images, files={"file": ("x.txt", b"plain text")}),  # 415
            admin.post(f"{images}/base64", json={**png, "content_base64": "é"}),  # 422
            admin.post("/api/orders/999999999/images/base64", json=png),  # 404
            admin.get("/api/orders/999999999/images"),  # 404
            admin.get(f"{images}/999999999"),  # 404
            admin.delete(f"{images}/999999999"),  # 404
        ]
        user.close()
    return served


def test_every_error_is_a_declared_problem(contract: Contract, failures: list[httpx.Response]) -> None:
    """Each 4xx a route answers is declared for its operation, as problem+json, with the declared schema."""
    statuses = set()
    for response in failures:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code)
        contract.check_problem(response)
        statuses.add(response.status_code)
    assert statuses == {401, 403, 404, 409, 412, 415, 422, 428}


def test_every_declared_error_is_problem_json(contract: Contract) -> None:
    """Every 4xx and 5xx /openapi.json declares is problem+json, but the health checks' own 503."""
    for path, operations in contract.openapi["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status[0] in "45" and not (path.startswith("/health") and status == "503"):
                    assert list(answer["content"]) == [PROBLEM_CONTENT_TYPE], (method, path, status)


def test_if_match_is_a_required_header_where_it_is_required(contract: Contract) -> None:
    """PATCH of an order declares If-Match required and 428; DELETE takes it optionally."""
    order = contract.openapi["paths"]["/api/orders/{order_id}"]
    for method, required in (("patch", True), ("delete", False)):
        headers = {p["name"]: p["required"] for p in order[method]["parameters"] if p["in"] == "header"}
        assert headers == {"if-match": required}
        assert ("428" in order[method]["responses"]) is required


def test_an_idempotent_replay_is_the_first_answer(admin: Api) -> None:
    """A retry with the same Idempotency-Key gets the first status, ETag, Location and body, byte for byte."""
    keyed = {"Idempotency-Key": uuid.uuid4().hex}
    first = admin.post("/api/orders", json=JSON_ORDER, headers=keyed)
    again = admin.post("/api/orders", json=JSON_ORDER, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    for header in ("ETag", "Location", "Content-Type"):
        assert first.headers[header] == again.headers[header]
