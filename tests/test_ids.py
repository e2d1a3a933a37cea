"""lastro.ids: random UUIDs and hex ids drawn a batch at a time, never the same twice, even across a fork."""

from __future__ import annotations

import os
import re
import sys
import uuid

import pytest

import lastro
from lastro.ids import random_hex

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_uuid4_is_a_random_uuid_as_the_standard_library_makes() -> None:
    """`lastro.uuid4()` gives a `uuid.UUID` of version 4 and the RFC 4122 variant."""
    made = lastro.uuid4()
    assert isinstance(made, uuid.UUID)
    assert (made.version, made.variant) == (4, uuid.RFC_4122)


def test_random_hex_is_32_hex_digits() -> None:
    """A hex id has a UUID4's 128 bits, as 32 lowercase hex digits."""
    assert HEX_ID.fullmatch(random_hex())


def test_ids_are_not_repeated_across_batches() -> None:
    """Over several batches (256 ids each), every id drawn is new."""
    drawn = [lastro.uuid4() for _ in range(1000)]
    assert len(set(drawn)) == len(drawn)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_a_forked_worker_draws_ids_of_its_own() -> None:
    """A process forked while a batch is held does not hand out the ids its parent still holds."""
    random_hex()  # the batch is held from here on
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, random_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child_id = pipe.read()
    assert HEX_ID.fullmatch(child_id)
    assert child_id not in {random_hex() for _ in range(255)}
