"""Entity tags and If-Match values, read by their grammar (lastro.http.etags)."""

from __future__ import annotations

import pytest

from lastro.http.etags import if_match_tags, tag_version, version_etag


def test_a_version_etag_is_a_strong_quoted_tag() -> None:
    """Version 3 has the ETag `"3"`, which If-Match reads back as 3."""
    assert version_etag(3) == '"3"'
    assert if_match_tags(version_etag(3)) == ["3"]


def test_a_star_matches_any_version() -> None:
    """`*` (with blanks around it) is None: any current version."""
    assert if_match_tags(" * ") is None


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        ('"1", "2"', ["1", "2"]),
        ('W/"7"', ["7"]),
        (',, "3" ,', ["3"]),
        ('"a,b"', ["a,b"]),
        ('"Ù£"', ["Ù£"]),
    ],
)
def test_a_list_of_entity_tags_gives_their_opaque_tags(value: str, tags: list[str]) -> None:
    """Commas, blanks, empty elements, weak tags and quoted commas are read as RFC 9110 writes them."""
    assert if_match_tags(value) == tags


@pytest.mark.parametrize(
    "value", ["", " , ", "3", '"1""2"', '"1" "2"', "W/", '"open', '"a"b', '"\x00"', '"٣"']
)
def test_a_value_that_is_not_an_if_match_is_refused(value: str) -> None:
    """No entity tag, an unquoted tag, tags not separated by commas or a character outside etagc."""
    with pytest.raises(ValueError, match="If-Match"):
        if_match_tags(value)


@pytest.mark.parametrize("tag", ["0", "42", "9" * 18])
def test_ascii_digits_that_fit_64_bits_are_a_version(tag: str) -> None:
    """Up to 18 ASCII digits name a version."""
    assert tag_version(tag) == int(tag)


@pytest.mark.parametrize("tag", ["", "٣", "²", "1²", "-1", "+1", " 1", "1_000", "9" * 19, "9" * 5000])
def test_other_tags_name_no_version(tag: str) -> None:
    """Unicode digits, signs, blanks, underscores and numbers past 64 bits are no version, never an error."""
    assert tag_version(tag) is None
