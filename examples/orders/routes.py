"""The orders API: auth, admin, orders (idempotent create, ETag/If-Match updates, keyset pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Header, HTTPException, Query, Request, Response
from sqlalchemy import Connection

import lastro
from examples.orders import accounts, idempotency, queries
from examples.orders.auth import Admin, Caller, Passwords, Principal, TokenCodec
from examples.orders.changes import ChangeType, OrderChange, OrderChanges
from examples.orders.errors import NotFound
from examples.orders.models import (
    NO_NUL,
    DateTime,
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
from examples.orders.order_cache import OrderReads
from lastro.http import etags

router = APIRouter(prefix="/api")


# --- auth and admin -------------------------------------------------------------------------------------


@router.post("/auth/token", tags=["auth"], responses=lastro.problems(401))
@lastro.rate_limit(lambda settings: settings.RATE_LIMIT_LOGIN, name="login", fail_closed=True)
async def issue_token(
    request: Request,
    unit: lastro.ReadUnit,
    username: Annotated[str, Form(max_length=100, pattern=NO_NUL)],
    password: Annotated[str, Form(max_length=200)],
) -> Token:
    """OAuth2 password flow: a bearer token for a valid username and password.

    Limited by `RATE_LIMIT_LOGIN` per client address and per username, and refused (503) rather than
    unlimited while a shared rate-limit store is unreachable.
    """
    settings: lastro.Settings = request.app.state.lastro.settings
    await lastro.check_rate_limit(
        request, username, settings.RATE_LIMIT_LOGIN, name="login-username", fail_closed=True
    )
    user = await unit.run(accounts.find_user, username)
    passwords: Passwords = request.app.state.passwords
    if not await passwords.verify(user.password_hash if user else None, password) or user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    codec: TokenCodec = request.app.state.tokens
    return Token(access_token=codec.issue(Principal(user.id, user.tenant_id, user.is_admin)))


@router.post("/admin/tenants", status_code=201, tags=["admin"], responses=lastro.problems(401, 403, 409))
async def create_tenant(body: TenantIn, _: Admin, unit: lastro.WriteUnit) -> TenantOut:
    tenant_id = await unit.run(accounts.create_tenant, body.name)
    return TenantOut(id=tenant_id, name=body.name)


@router.post("/admin/users", status_code=201, tags=["admin"], responses=lastro.problems(401, 403, 404, 409))
async def create_user(request: Request, body: UserIn, _: Admin, unit: lastro.WriteUnit) -> UserOut:
    passwords: Passwords = request.app.state.passwords
    password_hash = await passwords.hash(body.password)

    def work(connection: Connection) -> int:
        if not accounts.tenant_exists(connection, body.tenant_id):
            raise NotFound(f"tenant {body.tenant_id} not found")
        return accounts.create_user(connection, body.tenant_id, body.username, password_hash, body.is_admin)

    user_id = await unit.run(work)
    return UserOut(id=user_id, username=body.username, tenant_id=body.tenant_id, is_admin=body.is_admin)


# --- orders ---------------------------------------------------------------------------------------------


def _etag(order: Order) -> dict[str, str]:
    return {"ETag": etags.version_etag(order.version)}


@router.post(
    "/orders", status_code=201, response_model=Order, tags=["orders"], responses=lastro.problems(401, 409)
)
async def create_order(
    order: OrderIn,
    caller: Caller,
    unit: lastro.WriteUnit,
    changes: OrderChanges,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Order | Response:
    """Create an order; with an `Idempotency-Key`, a retry returns the first response, never a second row."""

    def create(connection: Connection) -> Order:
        created = queries.create_order(connection, caller.tenant_id, order)
        changes.record(connection, _change("order.created", caller, created))
        return created

    if idempotency_key is None:
        created = await unit.run(create)
        response.headers.update(_created_headers(created))
        return created
    key = idempotency_key
    digest = idempotency.request_hash(order.model_dump_json().encode())

    def create_once(connection: Connection) -> idempotency.StoredResponse:
        stored = idempotency.claim_key(connection, caller.tenant_id, key, digest)
        if stored is not None:
            return stored  # a retry: the change was recorded the first time
        created = create(connection)
        stored = idempotency.StoredResponse(201, _created_headers(created), created.model_dump_json())
        idempotency.store_response(connection, caller.tenant_id, key, stored)
        return stored

    stored = await unit.run(create_once)
    return Response(stored.body, stored.status_code, stored.headers, media_type="application/json")


def _change(kind: ChangeType, caller: Principal, order: Order) -> OrderChange:
    return OrderChange(kind, caller.tenant_id, order.id, order.version, order.updated_at, caller.user_id)


def _created_headers(order: Order) -> dict[str, str]:
    return {**_etag(order), "Location": f"/api/orders/{order.id}"}


@router.get("/orders/{order_id}", response_model=Order, tags=["orders"], responses=lastro.problems(401, 404))
async def get_order(order_id: int, caller: Caller, unit: lastro.ReadUnit, orders: OrderReads) -> Response:
    # The reads answered most (by id, and pages of up to 200) send data built from the rows, not models:
    # validating them again cost more CPU than the query (lastro.JSONResponse; schema conformance tested).
    # By id, the answer is cached across workers (ORDER_CACHE_*), invalidated by each change.
    return await orders.read(unit, caller.tenant_id, order_id)


@router.get("/orders", response_model=OrderPage, tags=["orders"], responses=lastro.problems(401))
async def list_orders(
    caller: Caller,
    unit: lastro.ReadUnit,
    limit: Annotated[int, lastro.page_limit(default=50)],
    status: Status | None = None,
    customer: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    created_from: DateTime | None = None,
    created_to: DateTime | None = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> lastro.JSONResponse:
    """Newest first, `limit` (50 unless given, at most MAX_PAGE_SIZE) at a time; pass `next_cursor` back as
    `cursor` for the next page."""
    where = queries.OrderFilter(status, customer, created_from, created_to)
    return lastro.JSONResponse(await unit.run(queries.list_orders, caller.tenant_id, where, limit, cursor))


def _expected_version(if_match: str | None) -> int | None:
    """The version `If-Match` names; None for none (DELETE) or `*`. A route that requires it declares it
    a required header: lastro answers 428 to a request without it."""
    if if_match is None:
        return None
    try:
        tags = etags.if_match_tags(if_match)
    except ValueError:
        tags = []
    if tags is None:
        return None
    versions = {etags.tag_version(tag) for tag in tags}
    if len(versions) != 1 or None in versions:  # compared with one version: a list of several is refused
        raise HTTPException(412, "If-Match does not match the order's current ETag")
    return versions.pop()


@router.patch("/orders/{order_id}", tags=["orders"], responses=lastro.problems(401, 404, 409, 412))
async def update_order(
    order_id: int,
    patch: OrderPatch,
    caller: Caller,
    unit: lastro.WriteUnit,
    changes: OrderChanges,
    response: Response,
    if_match: Annotated[str, Header(description="the ETag of the order as read, or `*`")],
) -> Order:
    """Change status, notes or items; needs `If-Match` with the order's ETag (or `*`)."""
    expected = _expected_version(if_match)

    def update(connection: Connection) -> Order:
        updated = queries.update_order(connection, caller.tenant_id, order_id, expected, patch)
        if expected is None or updated.version != expected:  # a PATCH to the same values changes nothing
            changes.record(connection, _change("order.updated", caller, updated))
        return updated

    updated = await unit.run(update)
    response.headers.update(_etag(updated))
    return updated


@router.delete(
    "/orders/{order_id}", status_code=204, tags=["orders"], responses=lastro.problems(401, 404, 412)
)
async def delete_order(
    order_id: int,
    caller: Caller,
    unit: lastro.WriteUnit,
    changes: OrderChanges,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    expected = _expected_version(if_match)

    def delete(connection: Connection) -> None:
        version, at = queries.delete_order(connection, caller.tenant_id, order_id, expected)
        change = OrderChange("order.deleted", caller.tenant_id, order_id, version, at, caller.user_id)
        changes.record(connection, change)

    await unit.run(delete)
    return Response(status_code=204)
