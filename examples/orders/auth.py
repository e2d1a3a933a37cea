"""Passwords (Argon2id, in a bulkhead), access tokens (JWT, HS256 pinned) and the caller of a request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

import lastro

__all__ = [
    "ALGORITHM",
    "STAND_IN_HASH",
    "Admin",
    "Caller",
    "Passwords",
    "Principal",
    "TokenCodec",
    "hash_password",
]

ALGORITHM = "HS256"
VERIFIED_TOKENS = 10_000  # tokens whose signature was checked, kept so a repeat costs a lookup
# Checked in place of an unknown user's hash, so that an unknown name costs the time of a wrong password:
# "not a real password" hashed with PasswordHasher()'s parameters. A constant, because hashing it costs every
# worker's start a CPU burst and 64 MiB; `Passwords.open` hashes it again if the library's parameters move.
STAND_IN_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$oAxnMn21qQ1j672JlbF0TQ$xFOwOkNAf/Hh/xyE4GkBfDyegw1v3lh+cx2kYXymCnY"
)


_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def hash_password(password: str) -> str:
    """Hash a password here and now, blocking: for scripts. The service hashes with `Passwords.hash`."""
    return PasswordHasher().hash(password)


class Passwords:
    """Hashes and checks passwords (Argon2id: 64 MiB and a long CPU burst each) in a bulkhead of their own.

    The bulkhead bounds how many run at once, hence the memory they take, and keeps them off the threads
    the database and the health checks use; past it, a login waits briefly and then gets a 503
    (benchmarks/RESULTS.md, "Password hashing: a login flood").
    """

    def __init__(self, bulkhead: lastro.Bulkhead, dummy_hash: str, hasher: PasswordHasher) -> None:
        self.bulkhead = bulkhead
        self._dummy_hash = dummy_hash
        self._hasher = hasher

    @classmethod
    async def open(cls, bulkhead: lastro.Bulkhead) -> Passwords:
        """Passwords hashed with the library's current recommended parameters, and a hash for nobody."""
        hasher = PasswordHasher()
        dummy_hash = STAND_IN_HASH
        if hasher.check_needs_rehash(dummy_hash):  # a new argon2-cffi recommends other parameters
            dummy_hash = await bulkhead.run(hasher.hash, "not a real password")
        return cls(bulkhead, dummy_hash, hasher)

    async def hash(self, password: str) -> str:
        return await self.bulkhead.run(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; `None` (no such user) costs the same and is never a match."""
        return await self.bulkhead.run(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return (
                self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    tenant_id: int
    is_admin: bool


class TokenCodec:
    """Issues and checks access tokens signed with `SECRET_KEY`."""

    def __init__(
        self, secret: str, ttl: float, clock: Any = time.time, cache_size: int = VERIFIED_TOKENS
    ) -> None:
        self._secret = secret
        self._ttl = ttl
        self._clock = clock
        # Checking an HS256 signature costs more than the rest of a GET by id, and the same bytes always
        # check the same way: a token is checked once, then remembered until its `exp`.
        self._verified: lastro.LRUCache[str, Principal] = lastro.LRUCache(cache_size, clock=clock)

    def issue(self, principal: Principal) -> str:
        now = int(self._clock())
        claims = {
            "sub": str(principal.user_id),
            "tid": principal.tenant_id,
            "adm": principal.is_admin,
            "iat": now,
            "exp": now + int(self._ttl),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def check(self, token: str) -> Principal:
        """The token's principal; raises 401 for an expired, tampered, unsigned or malformed token."""
        principal = self._verified.get(token)
        if principal is None:
            principal, expires = self._decode(token)
            self._verified.set(token, principal, expires_at=expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]}
            )
            principal = Principal(int(claims["sub"]), int(claims["tid"]), bool(claims.get("adm", False)))
            expires = int(claims["exp"])
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise _unauthorized("the access token is invalid or expired") from None
        if expires <= self._clock():  # the codec's clock rules, as it does for the tokens it remembers
            raise _unauthorized("the access token is invalid or expired")
        return principal, expires


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def caller_id(connection: HTTPConnection) -> str | None:
    """The user a valid access token names, so that rate limits count per user; None when anonymous."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    codec: TokenCodec | None = getattr(connection.app.state, "tokens", None)
    if scheme.lower() != "bearer" or not token or codec is None:
        return None
    try:
        return str(codec.check(token).user_id)
    except HTTPException:  # answered 401 by the route; counted against the client's address meanwhile
        return None


async def _caller(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    if token is None:
        raise _unauthorized("an access token is required: POST /api/auth/token")
    codec: TokenCodec = request.app.state.tokens
    return codec.check(token)


async def _admin(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "this needs an administrator")
    return principal


Caller = Annotated[Principal, Depends(_caller)]
Admin = Annotated[Principal, Depends(_admin)]
