"""Reading a libpq trace (`pgconn.trace(fd)`): which protocol messages each side sent, in order."""

from __future__ import annotations

from pathlib import Path

__all__ = ["messages", "sent"]


def messages(trace: Path) -> list[tuple[str, str]]:
    """(sender, message type) for each message: `F` the client, `B` the server. A line is
    `time<TAB>sender<TAB>length<TAB>type<TAB>...`; a query's text may run on over further lines, which are
    skipped."""
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    return [(fields[1], fields[3]) for fields in lines if len(fields) > 3]


def sent(trace: Path) -> list[str]:
    """The types of the messages the client sent."""
    return [kind for sender, kind in messages(trace) if sender == "F"]
