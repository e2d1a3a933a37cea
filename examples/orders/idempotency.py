"""Idempotency keys: a retried create with the same `Idempotency-Key` gets the first response again.

The first request claims the key inside its own transaction and stores its response (status, headers,
body) before committing, so a retry replays exactly what the first one answered and never writes twice.
A key is bound to the request body it came with: another body under the same key is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, update

from examples.orders.errors import Conflict, KeyReused
from examples.orders.schema import idempotency_keys
from examples.orders.storage import insert_ignoring_duplicates, now

__all__ = ["StoredResponse", "claim_key", "purge_idempotency_keys", "request_hash", "store_response"]


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: str


_THE_KEY = (idempotency_keys.c.tenant_id == bindparam("tenant_id")) & (
    idempotency_keys.c.key == bindparam("key")
)
_STORED = select(
    idempotency_keys.c.request_hash,
    idempotency_keys.c.status_code,
    idempotency_keys.c.response_headers,
    idempotency_keys.c.response,
).where(_THE_KEY)
_STORE = (
    update(idempotency_keys)
    .where(
        idempotency_keys.c.tenant_id == bindparam("claimed_tenant_id"),
        idempotency_keys.c.key == bindparam("claimed_key"),
    )
    .values(
        status_code=bindparam("status_code"),
        response_headers=bindparam("response_headers", type_=idempotency_keys.c.response_headers.type),
        response=bindparam("response"),
    )
)


def claim_key(connection: Connection, tenant_id: int, key: str, digest: str) -> StoredResponse | None:
    """Claim an idempotency key for this request; return the stored response if it was already used.

    Raises `KeyReused` when the key came with another body, and `Conflict` while the request that
    claimed it is still being processed elsewhere.
    """
    claimed = insert_ignoring_duplicates(
        connection,
        idempotency_keys,
        {"tenant_id": tenant_id, "key": key, "request_hash": digest, "created_at": now()},
    )
    if claimed:
        return None
    row = connection.execute(_STORED, {"tenant_id": tenant_id, "key": key}).one()
    if row.request_hash != digest:
        raise KeyReused(key)
    if row.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still in progress")
    return StoredResponse(row.status_code, row.response_headers or {}, row.response)


def store_response(connection: Connection, tenant_id: int, key: str, response: StoredResponse) -> None:
    """Keep the response of the request that claimed `key`, in its transaction."""
    connection.execute(
        _STORE,
        {
            "claimed_tenant_id": tenant_id,
            "claimed_key": key,
            "status_code": response.status_code,
            "response_headers": response.headers,
            "response": response.body,
        },
    )


def purge_idempotency_keys(connection: Connection, created_before: datetime) -> int:
    """Forget Idempotency-Keys older than the window in which a client may still retry."""
    statement = delete(idempotency_keys).where(idempotency_keys.c.created_at < created_before)
    return connection.execute(statement).rowcount
