"""Fresh PostgreSQL databases for tests, on the machine's server (127.0.0.1:5432, trust,
user postgres; ``RECEIVER_TEST_POSTGRES`` names another): one per test, dropped after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg

SERVER = os.environ.get("RECEIVER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _run(statement: str) -> None:
    # A thread of its own: the test's event loop may be set (not running) on this one,
    # and asyncio.run would replace it.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(statement)).result()


@contextlib.contextmanager
def fresh_database(prefix: str = "receiver_test") -> Iterator[str]:
    """The URL of a new, empty database; dropped (its sessions ended) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _run(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        _run(f'DROP DATABASE "{name}" WITH (FORCE)')
