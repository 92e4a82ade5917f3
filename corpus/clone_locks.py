"""Who is using a repository's clone: a fetch holds a shared lock on it, dropping it needs the lock alone.

PostgreSQL advisory locks on a connection of their own (not Django's, which may be closed and reopened
under a long job): every worker machine sees them, and a worker killed with -9 loses its connection
and so its lock at once, with no row left behind to clean up. A drop while a fetch uses the clone is
refused; a fetch that arrives while a drop is deleting waits for the drop to end, then clones afresh."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from hrgc_site.errors import InUse


class CloneInUse(InUse):
    """The clone is being read or updated by a fetch; it cannot be dropped now."""


def lock_key(full_name: str) -> int:
    """A signed 64-bit key for the repository (advisory locks take a bigint)."""
    digest = hashlib.sha256(f"hrgc-clone\0{full_name.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _own_connection():
    """A new connection with the project's database settings, outside Django's connection handling."""
    raw = connection.get_new_connection(connection.get_connection_params())
    raw.autocommit = True
    return raw


@contextmanager
def clone_in_use(full_name: str) -> Iterator[None]:
    """Held by a fetch for as long as it clones, fetches into or reads the repository's clone.

    Several fetches may hold it at once; it waits while a drop of the same clone is under way."""
    raw = _own_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock_shared(%s)", [lock_key(full_name)])
        yield
    finally:
        raw.close()  # the lock goes with the connection


@contextmanager
def clone_for_dropping(full_name: str) -> Iterator[None]:
    """Held while a clone is deleted; raises CloneInUse at once when a fetch is using it."""
    raw = _own_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(full_name)])
            (taken,) = cursor.fetchone()
        if not taken:
            raise CloneInUse(
                f"The clone of {full_name} is in use by a running fetch; drop it once that fetch has ended."
            )
        yield
    finally:
        raw.close()
