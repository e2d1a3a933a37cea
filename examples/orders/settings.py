"""The orders service's settings: lastro's, plus what this service adds."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

import lastro

__all__ = ["OrdersSettings"]


class OrdersSettings(lastro.Settings):
    SERVICE_NAME: str = "orders"
    SERVICE_VERSION: str = lastro.__version__  # the example ships with lastro
    MIGRATIONS_DIR: Path = Path(__file__).parent / "migrations"
    TOKEN_TTL: float = Field(default=3600.0, gt=0, description="seconds an access token is valid")
    IMAGES_DIR: Path = Field(default=Path("var/images"), description="where order images are stored")
    IMAGE_MAX_BYTES: int = Field(default=5 * 1024 * 1024, gt=0, description="largest image accepted")
    ORDERS_RETENTION: float = Field(
        default=30 * 86400.0, ge=0, description="seconds a deleted order is kept before it is purged"
    )
    IDEMPOTENCY_WINDOW: float = Field(
        default=86400.0, gt=0, description="seconds an Idempotency-Key is remembered"
    )
    PURGE_INTERVAL: float = Field(default=3600.0, gt=0, description="seconds between purges")
    AUTH_HASH_CONCURRENCY: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="password hashes (Argon2id, 64 MiB each) a worker computes at once; default: the cores",
    )
    AUTH_HASH_WAIT: float = Field(
        default=1.0,
        ge=0,
        description="seconds a login or user creation waits for a hashing slot before it gets 503",
    )
    AUTH_HASH_NICE: int = Field(
        default=10,
        ge=0,
        le=19,
        description="how much lower the hashing threads' CPU priority is (Linux): the event loop goes first",
    )
