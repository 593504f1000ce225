"""The store: the one place message data lives (receiver/store/sql.py runs its rules)."""

from __future__ import annotations

from pathlib import Path

from receiver.store.postgres.store import PostgresStore
from receiver.store.sql import SqlStore
from receiver.store.sqlite import CommitObserver, SqliteStore

SQLITE_PREFIX = "sqlite:///"
POSTGRESQL_PREFIXES = ("postgresql://", "postgres://")


def open_store(database_url: str, *, on_commit: CommitObserver | None = None) -> SqlStore:
    """The store ``database_url`` names (``sqlite:///PATH`` or
    ``postgresql://USER:PASSWORD@HOST:PORT/DB``), ready to ``open()``. ``on_commit``
    hears of every group commit (reports, seconds)."""
    if database_url.startswith(SQLITE_PREFIX):
        return SqliteStore(Path(database_url.removeprefix(SQLITE_PREFIX)), on_commit)
    if database_url.startswith(POSTGRESQL_PREFIXES):
        return PostgresStore(database_url, on_commit)
    raise ValueError(f"unsupported database_url {database_url.split(':', 1)[0]!r}")
