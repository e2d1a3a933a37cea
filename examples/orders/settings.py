"""The orders service's settings: lastro's, plus what this service adds."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

import lastro

__all__ = ["DEVELOPMENT_ADMIN_PASSWORD", "MIN_ADMIN_PASSWORD_LENGTH", "OrdersSettings"]

DEVELOPMENT_ADMIN_PASSWORD = "admin"  # what `make run` logs in with; never accepted in production
MIN_ADMIN_PASSWORD_LENGTH = 12
# A password of 12 characters or more with this few distinct ones is a repetition (adminadminadmin).
MIN_ADMIN_PASSWORD_DISTINCT = 6


class OrdersSettings(lastro.Settings):
    SERVICE_NAME: str = "orders"
    SERVICE_VERSION: str = lastro.__version__  # the example ships with lastro
    MIGRATIONS_DIR: Path = Path(__file__).parent / "migrations"
    MAX_PAGE_SIZE: int = Field(default=200, ge=1, description="orders one page of the list holds at most")
    TOKEN_TTL: float = Field(default=3600.0, gt=0, description="seconds an access token is valid")
    IMAGES_DIR: Path = Field(default=Path("var/images"), description="where order images are stored")
    IMAGE_MAX_BYTES: int = Field(default=5 * 1024 * 1024, gt=0, description="largest image accepted")
    PURGE_AFTER_DAYS: float = Field(
        default=30.0,
        ge=0,
        description="days a deleted order is kept before the cleanup purges it with its images",
    )
    IDEMPOTENCY_WINDOW: float = Field(
        default=86400.0, gt=0, description="seconds an Idempotency-Key is remembered"
    )
    CLEANUP_INTERVAL_SECONDS: float = Field(
        default=3600.0, gt=0, description="seconds between cleanups (once across every worker and machine)"
    )
    ORPHAN_GRACE_SECONDS: float = Field(
        default=3600.0,
        ge=0,
        description="how old an image file no order refers to must be before the cleanup removes it",
    )
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
    ADMIN_USERNAME: str = Field(
        default="admin", min_length=1, description="the administrator created in tenant `default` at start"
    )
    ADMIN_PASSWORD: SecretStr | None = Field(
        default=None,
        description="with no user at all, start-up creates ADMIN_USERNAME with this password; "
        "unset: `admin` in development, no user in production",
    )
    ORDER_CACHE_ENABLED: bool = Field(
        default=False,  # a read by primary key costs about what the cache's catch-up does (docs)
        description="cache order reads by id across workers, invalidated by each update and delete",
    )
    ORDER_CACHE_SIZE: int = Field(default=1000, ge=1, description="orders each worker's cache holds at most")
    ORDER_CACHE_MAX_BYTES: int = Field(
        default=32 * 1024 * 1024, ge=1, description="bytes of orders each worker's cache holds at most"
    )
    ORDER_CACHE_TTL: float = Field(
        default=300.0, gt=0, description="seconds a cached order lives when no change invalidates it"
    )
    AUDIT_BATCH_SIZE: int = Field(
        default=100, ge=1, le=10_000, description="audit entries written in one transaction at most"
    )
    AUDIT_MAX_WAIT: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="seconds an audit entry waits for its batch to fill before it is written anyway",
    )
    AUDIT_MAX_PENDING: int = Field(
        default=10_000,
        ge=1,
        description="audit entries a worker holds unwritten at most; beyond them, order writes wait for room",
    )
    AUTH_HASH_NICE: int = Field(
        default=10,
        ge=0,
        le=19,
        description="how much lower the hashing threads' CPU priority is (Linux): the event loop goes first",
    )

    @property
    def bootstrap_admin_password(self) -> str | None:
        """The password of the administrator start-up creates on an empty database, or None for none."""
        if self.ADMIN_PASSWORD is not None:
            return self.ADMIN_PASSWORD.get_secret_value()
        return None if self.is_production else DEVELOPMENT_ADMIN_PASSWORD

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.ADMIN_PASSWORD is not None and _weak(self.ADMIN_PASSWORD.get_secret_value()):
            problems.append(
                f"ADMIN_PASSWORD must be at least {MIN_ADMIN_PASSWORD_LENGTH} characters, not a repetition, "
                "in production: set it to the output of `python -c 'import secrets; "
                "print(secrets.token_urlsafe(16))'`, or unset it and run `python -m examples.orders.admin "
                "create-admin`"
            )
        return problems

    @model_validator(mode="after")
    def _audit_pending_holds_a_batch(self) -> OrdersSettings:
        if self.AUDIT_MAX_PENDING < self.AUDIT_BATCH_SIZE:
            raise ValueError(
                f"AUDIT_MAX_PENDING ({self.AUDIT_MAX_PENDING}) must be at least AUDIT_BATCH_SIZE "
                f"({self.AUDIT_BATCH_SIZE}): the queue holds one whole batch"
            )
        return self


def _weak(password: str) -> bool:
    return len(password) < MIN_ADMIN_PASSWORD_LENGTH or len(set(password)) < MIN_ADMIN_PASSWORD_DISTINCT
