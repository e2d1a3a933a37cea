"""The orders service's settings: lastro's, plus what this service adds."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

import lastro

__all__ = ["OrdersSettings"]


class OrdersSettings(lastro.Settings):
    SERVICE_NAME: str = "orders"
    MIGRATIONS_DIR: Path = Path(__file__).parent / "migrations"
    TOKEN_TTL: float = Field(default=3600.0, gt=0, description="seconds an access token is valid")
    IMAGES_DIR: Path = Field(default=Path("var/images"), description="where order images are stored")
    IMAGE_MAX_BYTES: int = Field(default=5 * 1024 * 1024, gt=0, description="largest image accepted")
