"""``receiver migrate --from URL --to URL``: copy a whole store into another, e.g. a
SQLite file into PostgreSQL when one process on one file is no longer enough
(receiver/store/migrate.py does the copy; docs/operations.md, "Moving from SQLite to
PostgreSQL", the procedure)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from receiver.errors import ReceiverError, StoreUnavailable, UsageError
from receiver.store import SQLITE_PREFIX, open_store
from receiver.store.migrate import (
    SOURCE_NOT_SQLITE,
    TABLES,
    Copied,
    Rebuilt,
    TargetNotEmpty,
    migrate,
)
from receiver.store.sql import SqlStore


def shown(url: str) -> str:
    """``url`` as it may be printed: without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///PATH`` URL names (None for another database)."""
    return Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None


async def _open(url: str, side: str, *, ingest: bool) -> SqlStore:
    try:
        store = open_store(url)
    except ValueError as exc:
        raise UsageError(f"--{'from' if side == 'source' else 'to'}: {exc}") from None
    try:
        await store.open(ingest=ingest)
    except (ReceiverError, OSError) as exc:
        await store.close()
        raise StoreUnavailable(f"cannot open the {side} {shown(url)}: {exc}") from None
    return store


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _line(result: Copied | Rebuilt) -> str:
    if isinstance(result, Copied):
        skipped = result.read - result.copied
        kept = f", {skipped} already in the target" if skipped else ""
        return f"{result.table}: {_rows(result.copied)} copied{kept}"
    verdict = (
        "equal to the source's"
        if not result.differ
        else f"{result.differ} differ from the source's (its counts had drifted;"
        " the target's are recounted from the messages)"
    )
    return f"{result.table}: rebuilt from the messages, {_rows(result.rows)}, {verdict}"


async def _migrate(source_url: str, target_url: str, resume: bool) -> list[Copied | Rebuilt]:
    source = await _open(source_url, "source", ingest=False)
    try:
        target = await _open(target_url, "target", ingest=True)
        try:
            return await migrate(
                source, target, resume=resume, on_table=lambda r: print(_line(r), flush=True)
            )
        except TargetNotEmpty:
            raise UsageError(
                f"the target {shown(target_url)} already holds messages (--resume continues"
                " an interrupted migration into it)"
            ) from None
        finally:
            await target.close()
    finally:
        await source.close()


def run_migrate(args: argparse.Namespace) -> int:
    source, target = _sqlite_path(args.source), _sqlite_path(args.target)
    if source is None:  # checked first: opening a store creates its schema
        raise UsageError(SOURCE_NOT_SQLITE)
    if target is not None and target.resolve() == source.resolve():
        raise UsageError(f"--from and --to name the same store ({shown(args.source)})")
    if not source.is_file():
        raise StoreUnavailable(f"the source {shown(args.source)} does not exist")
    started = time.perf_counter()
    results = asyncio.run(_migrate(args.source, args.target, args.resume))
    copied = [result for result in results if isinstance(result, Copied)]
    print(
        f"copied {_rows(sum(r.copied for r in copied))} in {len(copied)} tables from"
        f" {shown(args.source)} to {shown(args.target)} in {time.perf_counter() - started:.1f} s"
    )
    return 0


def add_commands(commands: Any) -> None:
    """Register ``migrate`` on the CLI's subparsers (it reads no config)."""
    tables = ", ".join(table.name for table in TABLES)
    command = commands.add_parser(
        "migrate",
        help="copy a whole store into another (e.g. SQLite to PostgreSQL)",
        description=f"Copy every row of the source store ({tables}) into the target, "
        "keeping every id and the change feed's cursors; the target's delivery aggregates "
        "are recounted from the copied messages and checked against the source's. Stop "
        "receiver serve and receiver worker on the source first. Rows stream in batches, "
        "each committed on its own. Safe to re-run after a failure, though not resumable "
        "where it stopped: with --resume it reads the source again, keeps the rows the "
        "target already holds and copies the rest. One line per table, then a total.",
    )
    command.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="sqlite:///PATH"
    )
    command.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
    )
    command.add_argument(
        "--resume",
        action="store_true",
        help="the target holds an interrupted copy of this source: keep its rows, copy the rest",
    )
    command.set_defaults(run=run_migrate)


__all__ = ["add_commands", "shown"]
