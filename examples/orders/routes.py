"""The orders API: auth, admin, orders (idempotent create, ETag/If-Match updates, keyset pages)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, HTTPException, Query, Request, Response

import lastro
from examples.orders import repository as repo
from examples.orders.auth import Admin, Caller, Passwords, Principal, TokenCodec
from examples.orders.models import (
    NO_NUL,
    Order,
    OrderIn,
    OrderPage,
    OrderPatch,
    Status,
    TenantIn,
    TenantOut,
    Token,
    UserIn,
    UserOut,
)

router = APIRouter(prefix="/api")
logger = lastro.get_logger("orders")

JSON = "application/json"


@router.get("/ping")
async def ping(delay: float = Query(default=0.0, ge=0.0, le=30.0)) -> dict[str, Any]:
    """Answer after `delay` seconds: lets a client hold a request in flight."""
    logger.info("ping received", delay=delay)
    if delay:
        await asyncio.sleep(delay)
    return {"pong": True}


# --- auth and admin -------------------------------------------------------------------------------------


@router.post("/auth/token", response_model=Token, tags=["auth"])
async def issue_token(
    request: Request,
    unit: lastro.ReadUnit,
    username: Annotated[str, Form(max_length=100, pattern=NO_NUL)],
    password: Annotated[str, Form(max_length=200)],
) -> Token:
    """OAuth2 password flow: a bearer token for a valid username and password."""
    user = await unit.run(repo.find_user, username)
    passwords: Passwords = request.app.state.passwords
    if not await passwords.verify(user.password_hash if user else None, password) or user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    codec: TokenCodec = request.app.state.tokens
    return Token(access_token=codec.issue(Principal(user.id, user.tenant_id, user.is_admin)))


@router.post("/admin/tenants", status_code=201, response_model=TenantOut, tags=["admin"])
async def create_tenant(body: TenantIn, _: Admin, unit: lastro.WriteUnit) -> TenantOut:
    tenant_id = await unit.run(repo.create_tenant, body.name)
    return TenantOut(id=tenant_id, name=body.name)


@router.post("/admin/users", status_code=201, response_model=UserOut, tags=["admin"])
async def create_user(request: Request, body: UserIn, _: Admin, unit: lastro.WriteUnit) -> UserOut:
    passwords: Passwords = request.app.state.passwords
    password_hash = await passwords.hash(body.password)

    def work(connection: Any) -> int:
        if not repo.tenant_exists(connection, body.tenant_id):
            raise repo.NotFound(f"tenant {body.tenant_id} not found")
        return repo.create_user(connection, body.tenant_id, body.username, password_hash, body.is_admin)

    user_id = await unit.run(work)
    return UserOut(id=user_id, username=body.username, tenant_id=body.tenant_id, is_admin=body.is_admin)


# --- orders ---------------------------------------------------------------------------------------------


def _order_response(body: bytes, order_id: int, version: int, status_code: int = 200) -> Response:
    headers = {"ETag": f'"{version}"'}
    if status_code == 201:
        headers["Location"] = f"/api/orders/{order_id}"
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def _document_response(document: dict[str, Any]) -> Response:
    return _order_response(repo.to_json(document), document["id"], document["version"])


@router.post("/orders", status_code=201, response_model=Order, tags=["orders"])
async def create_order(
    order: OrderIn,
    caller: Caller,
    unit: lastro.WriteUnit,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Create an order; with an `Idempotency-Key`, a retry returns the first response, never a second row."""
    digest = repo.request_hash(order.model_dump_json().encode()) if idempotency_key is not None else ""

    def work(connection: Any) -> tuple[bytes, int, int]:
        if idempotency_key is not None:
            stored = repo.claim_key(connection, caller.tenant_id, idempotency_key, digest)
            if stored is not None:
                replayed = json.loads(stored.body)
                return stored.body, replayed["id"], replayed["version"]
        document = repo.create_order(connection, caller.tenant_id, order)
        body = repo.to_json(document)
        if idempotency_key is not None:
            repo.store_response(connection, caller.tenant_id, idempotency_key, 201, body.decode())
        return body, document["id"], document["version"]

    return _order_response(*await unit.run(work), status_code=201)


@router.get("/orders/{order_id}", response_model=Order, tags=["orders"])
async def get_order(order_id: int, caller: Caller, unit: lastro.ReadUnit) -> Response:
    row = await unit.run(repo.get_order, caller.tenant_id, order_id)
    return _document_response(repo.order_document(row))


@router.get("/orders", response_model=OrderPage, tags=["orders"])
async def list_orders(
    caller: Caller,
    unit: lastro.ReadUnit,
    status: Status | None = None,
    customer: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, description=f"capped at {repo.MAX_PAGE}")] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    where = repo.OrderFilter(status, customer, created_from, created_to)
    capped = min(limit, repo.MAX_PAGE)
    page = await unit.run(repo.list_orders, caller.tenant_id, where, capped, cursor)
    return Response(repo.to_json(page), media_type=JSON)


def _expected_version(if_match: str | None, *, required: bool) -> int | None:
    if if_match is None:
        if required:
            raise HTTPException(428, "send If-Match with the ETag of the order you read")
        return None
    if if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise HTTPException(412, "If-Match does not match the order's current ETag")
    return int(tag)


@router.patch("/orders/{order_id}", response_model=Order, tags=["orders"])
async def update_order(
    order_id: int,
    patch: OrderPatch,
    caller: Caller,
    unit: lastro.WriteUnit,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Change status, notes or items; needs `If-Match` with the order's ETag."""
    expected = _expected_version(if_match, required=True)

    def work(connection: Any) -> dict[str, Any]:
        version = expected
        if version is None:  # If-Match: *
            version = repo.get_order(connection, caller.tenant_id, order_id).version
        return repo.update_order(connection, caller.tenant_id, order_id, version, patch)

    return _document_response(await unit.run(work))


@router.delete("/orders/{order_id}", status_code=204, tags=["orders"])
async def delete_order(
    order_id: int, caller: Caller, unit: lastro.WriteUnit, if_match: Annotated[str | None, Header()] = None
) -> Response:
    expected = _expected_version(if_match, required=False)
    await unit.run(repo.delete_order, caller.tenant_id, order_id, expected)
    return Response(status_code=204)
