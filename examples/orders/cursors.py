"""Opaque page cursors: the id of the last order a page showed, which the next page starts after."""

from __future__ import annotations

import base64
import binascii

from examples.orders.errors import InvalidCursor
from examples.orders.storage import storable_id

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(order_id: int) -> str:
    return base64.urlsafe_b64encode(f"o:{order_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "o" or not value.isdigit() or not storable_id(int(value)):
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this API returned") from None
