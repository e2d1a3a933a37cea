"""The orders service's settings: lastro's, plus what this service adds."""

from __future__ import annotations

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
