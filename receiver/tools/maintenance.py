"""``receiver prune``, ``receiver erase`` and ``receiver backup`` (README "Commands").

Each works beside a running ``receiver serve`` on the same SQLite file: WAL lets its
reads run beside the service's writer, and its writes are short transactions that wait
for the write lock (``busy_timeout``) rather than fail. Procedures, and what to alert
on: docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receiver import logs, retention
from receiver.config import Config, load_existing
from receiver.errors import ReceiverError, UsageError
from receiver.http.staff import normalize_phone
from receiver.records import Erasure, Pruned
from receiver.store import open_store
from receiver.store.backup import backup

log = logging.getLogger("receiver.audit")


# --- prune ---------------------------------------------------------------------------


async def _prune(config: Config, dry_run: bool, now: datetime) -> Pruned:
    settings = config.settings.retention
    store = open_store(config.store_url)
    await store.open(ingest=not dry_run)
    try:
        if dry_run:
            return await retention.prunable(store, settings, now)
        return await retention.prune(store, settings, now)
    finally:
        await store.close()


def run_prune(args: argparse.Namespace) -> int:
    config = load_existing(args.config)
    settings = config.settings.retention
    if not (settings.raw_requests_days or settings.messages_days):
        print("retention is off ([retention] raw_requests_days and messages_days are 0)")
        return 0
    now = datetime.now(UTC)
    pruned = asyncio.run(_prune(config, args.dry_run, now))
    cutoffs = retention.Cutoffs.at(settings, now)

    def kept(cutoff: datetime | None, what: str) -> str:
        return f"{what} before {cutoff:%Y-%m-%dT%H:%M:%SZ}" if cutoff else f"{what}: kept forever"

    print(f"{'would prune' if args.dry_run else 'pruned'} {retention.describe(pruned)}")
    print(
        f"cut-offs: {kept(cutoffs.raw_requests, 'raw requests received')};"
        f" {kept(cutoffs.messages, 'messages last changed')}"
    )
    return 0


# --- erase ---------------------------------------------------------------------------


def _operator() -> str:
    """Who runs the command, for the audit record: the OS user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


async def _erase(config: Config, number: str, requested_by: str) -> Erasure:
    store = open_store(config.store_url)
    await store.open()
    try:
        return await store.erase_recipient(number, requested_by, datetime.now(UTC))
    finally:
        await store.close()


def run_erase(args: argparse.Namespace) -> int:
    try:
        number = normalize_phone(args.to)
    except ValueError as exc:
        raise UsageError(f"--to {args.to!r}: {exc}") from None
    requested_by = (args.by or _operator()).strip()
    if not 0 < len(requested_by) <= 200:
        raise UsageError("--by must be 1-200 characters")
    config = load_existing(args.config)
    logs.configure()
    erasure = asyncio.run(_erase(config, number, requested_by))
    # The audit line: what was done, when and by whom, never the number (nor a hash of
    # it: phone numbers are few enough to guess from one).
    log.info(
        "erased a phone number",
        extra={
            "audit": "erasure",
            "erasure_id": erasure.id,
            "requested_by": requested_by,
            "messages": erasure.messages,
            "raw_requests": erasure.raw_requests,
        },
    )
    print(
        f"erased the number from {erasure.messages} message(s) and deleted"
        f" {erasure.raw_requests} stored webhook request(s); audit record {erasure.id}"
    )
    return 0


# --- backup --------------------------------------------------------------------------


def run_backup(args: argparse.Namespace) -> int:
    config = load_existing(args.config)
    if not config.on_sqlite:
        raise UsageError(
            "receiver backup copies an SQLite file; back up PostgreSQL with pg_dump or"
            " base backups (docs/operations.md, 'Backups')"
        )
    source, target = config.sqlite_path, Path(args.path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory: name the backup file")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent} is not a directory")
    live = source.resolve()
    if target.resolve() in {live, *(live.with_name(live.name + s) for s in ("-wal", "-shm"))}:
        raise UsageError(f"{target} is the live database or one of its files")
    try:
        done = backup(source, target, overwrite=args.overwrite)
    except FileExistsError:
        raise UsageError(f"{target} exists: add --overwrite to replace it") from None
    except OSError as exc:  # the target's folder: not writable, read-only, full
        raise ReceiverError(f"cannot write {target}: {exc.strerror or exc}") from None
    print(
        f"backed up {source} to {done.path}: {done.pages} pages ({done.bytes} bytes),"
        f" schema version {done.schema_version}, integrity ok, in {done.seconds:.2f} s"
    )
    return 0


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register ``prune``, ``erase`` and ``backup`` on the CLI's subparsers."""
    prune = commands.add_parser(
        "prune",
        help="delete what [retention] keeps no longer (one full pass)",
        description="Delete raw requests and messages older than [retention] allows, in "
        "short batches beside a running service, and print how many rows of each kind.",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    prune.add_argument("--config", help=config_help)
    prune.set_defaults(run=run_prune)

    erase = commands.add_parser(
        "erase",
        help="erase a phone number: its messages keep their status, not the number",
        description="Blank NUMBER (and unsent message bodies) in every message to it, "
        "delete the stored webhook requests that carry it, keep statuses, counts and "
        "timelines, and record an audit line without the number. Safe to run again.",
    )
    erase.add_argument("--to", required=True, metavar="NUMBER", help="E.164, e.g. +639171234567")
    erase.add_argument(
        "--by", metavar="NAME", help="who asked for it, for the audit record (default: OS user)"
    )
    erase.add_argument("--config", help=config_help)
    erase.set_defaults(run=run_erase)

    copy = commands.add_parser(
        "backup",
        help="copy the live SQLite database to PATH, consistently",
        description="Copy the database as of one moment while the service runs (SQLite's "
        "online backup API), check the copy's integrity, then move it to PATH.",
    )
    copy.add_argument("path", metavar="PATH", help="the backup file to write")
    copy.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    copy.add_argument("--config", help=config_help)
    copy.set_defaults(run=run_backup)


__all__ = ["add_commands"]
