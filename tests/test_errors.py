"""How lastro quotes an error in one line: a message, a log field, a /health entry."""

from __future__ import annotations

from lastro.errors import one_line, one_line_with_type


def test_one_line_is_the_first_line_of_the_message() -> None:
    """A multi-line message (a driver's hint, a traceback) is cut to its first line, stripped."""
    assert one_line(OSError("  connection refused\n\tIs the server running?\n")) == "connection refused"


def test_one_line_of_a_silent_error_is_its_type() -> None:
    """An error without a message is named by its type, never an empty string."""
    assert one_line(TimeoutError()) == "TimeoutError"


def test_one_line_with_type_prefixes_the_type() -> None:
    """Where the error stands alone, its type comes first, once, even when it has no message."""
    assert (
        one_line_with_type(ConnectionRefusedError("refused\nretry later"))
        == "ConnectionRefusedError: refused"
    )
    assert one_line_with_type(TimeoutError()) == "TimeoutError"
