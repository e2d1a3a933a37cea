"""Entity tags and `If-Match` (RFC 9110 §8.8.3, §13.1.1), read by their grammar.

A header value is text the client chose: `str.isdigit()` holds for "٣" and "²", and `int()` takes the first
and fails on the second, or on 5,000 digits. Reading the header by the grammar, and a version only from
ASCII digits that fit a 64-bit column, keeps such values a 412 instead of a 500.
"""

from __future__ import annotations

import re

__all__ = ["MAX_VERSION_DIGITS", "if_match_tags", "tag_version", "version_etag"]

# Up to 18 ASCII digits: any such number fits a signed 64-bit INTEGER column.
MAX_VERSION_DIGITS = 18
_VERSION = re.compile(rf"[0-9]{{1,{MAX_VERSION_DIGITS}}}")
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


def version_etag(version: int) -> str:
    """The strong ETag of a row version: `"3"`."""
    return f'"{version}"'


def if_match_tags(value: str) -> list[str] | None:
    """The opaque tags an `If-Match` value lists, or None for `*`; ValueError if it is not an If-Match value.

    A weak tag counts as its opaque tag: a proxy that compresses a response weakens its ETag, and the
    client sends back what it was given.
    """
    if value.strip(" \t") == "*":
        return None
    tags: list[str] = []
    position, _ = _skip_separators(value, 0)
    while position < len(value):
        match = _ENTITY_TAG.match(value, position)
        if match is None:
            raise ValueError("If-Match is not `*` or a list of entity tags")
        tags.append(match.group(1))
        position, comma = _skip_separators(value, match.end())
        if not comma and position < len(value):
            raise ValueError("the entity tags of If-Match are not separated by commas")
    if not tags:
        raise ValueError("If-Match lists no entity tag")
    return tags


def _skip_separators(value: str, position: int) -> tuple[int, bool]:
    """Past the blanks and commas at `position`, and whether a comma was among them."""
    comma = False
    while position < len(value) and value[position] in " \t,":
        comma = comma or value[position] == ","
        position += 1
    return position, comma


def tag_version(tag: str) -> int | None:
    """The row version an opaque tag names (ASCII digits that fit 64 bits), or None."""
    if _VERSION.fullmatch(tag) is None:
        return None
    return int(tag)
