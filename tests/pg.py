"""Fresh PostgreSQL databases for tests, on the machine's server (127.0.0.1:5432, trust,
user postgres; ``RECEIVER_TEST_POSTGRES`` names another): one per test, dropped after.

A database with the store's schema is cloned from a template that ``migrated_template``
made once (``CREATE DATABASE ... TEMPLATE``, about 0.2 s) rather than created empty and
migrated by the store when it opens (about 0.7 s, most of it the migration)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg

from receiver.store.postgres.backend import migrate

SERVER = os.environ.get("RECEIVER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def _run_apart(job: Coroutine[Any, Any, None]) -> None:
    # A thread of its own: the test's event loop may be set (not running) on this one,
    # and asyncio.run would replace it.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, job).result()


def _run(statement: str) -> None:
    _run_apart(_admin(statement))


@contextlib.contextmanager
def fresh_database(prefix: str = "receiver_test", *, template: str | None = None) -> Iterator[str]:
    """The URL of a new database, empty or a copy of ``template``; dropped (its
    sessions ended) afterwards. (``STRATEGY WAL_LOG``, PostgreSQL 15's default, copies
    a small template in about 0.2 s; ``FILE_COPY`` checkpoints, about 2 s.)"""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}" STRATEGY WAL_LOG' if template else ""
    _run(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield f"{SERVER}/{name}"
    finally:
        _run(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_template() -> Iterator[str]:
    """The name of a new database holding the store's schema, migrated by the store's
    own ``migrate``, to clone with ``fresh_database(template=...)``; dropped afterwards.
    No session stays connected to it (a template in use cannot be copied)."""
    with fresh_database("receiver_template") as url:
        _run_apart(_migrate(url))
        yield url.rsplit("/", 1)[1]
