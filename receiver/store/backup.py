"""A consistent copy of a live SQLite store (``receiver backup PATH``).

SQLite's online backup API copies the database page by page. On its own, a step-wise
backup restarts whenever another connection writes between two steps, so under a steady
stream of reports it never finishes (measured: 2,218 restarts in 20 s at ~350 commits/s,
docs/design.md, "Backups"). So the copy first opens a read transaction on the source: in
WAL mode that is a snapshot which every step reads, and which never blocks the writer
(readers and the writer do not wait for each other in WAL). The steps then only pace the
copy's I/O, with a short sleep between them, so the writer's fsyncs keep the disk.

The copy is written next to the target under a temporary name, checked with
``PRAGMA integrity_check``, synced, and only then renamed into place: a failed or
interrupted backup never leaves a half-written file at ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from receiver.errors import StoreUnavailable

PAGES_PER_STEP = 1024
"""4 MiB of the default 4 KiB pages per step."""
PAUSE_SECONDS = 0.001


@dataclass(frozen=True, slots=True)
class Backup:
    """What ``backup`` wrote."""

    path: Path
    pages: int
    bytes: int
    schema_version: int
    seconds: float


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(
    source: Path,
    target: Path,
    *,
    overwrite: bool = False,
    pages_per_step: int = PAGES_PER_STEP,
    pause: float = PAUSE_SECONDS,
) -> Backup:
    """Copy the live database ``source`` to ``target`` as of one moment; raise
    FileExistsError if ``target`` exists (unless ``overwrite``), StoreUnavailable if the
    source cannot be read or the copy fails its integrity check."""
    if target.exists() and not overwrite:
        raise FileExistsError(target)
    started = time.perf_counter()
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # message data: readable by the service user only, like the store itself
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        version = _copy(source, partial, pages_per_step, pause)
        pages = _check(partial)
        _sync(partial)
        os.replace(partial, target)
        _sync(target.parent)
    finally:
        for leftover in (partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return Backup(target, pages, target.stat().st_size, version, time.perf_counter() - started)


def _copy(source: Path, partial: Path, pages_per_step: int, pause: float) -> int:
    """Copy ``source`` into ``partial`` from one read snapshot; the schema version."""
    try:
        # mode=rw: a missing source is an error, never a new empty database
        src = sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {source}: {exc}") from exc
    try:
        with (
            contextlib.closing(src),
            contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as dst,
        ):
            src.execute("PRAGMA busy_timeout = 5000")
            src.execute("BEGIN")
            # The first read starts the snapshot that every step of the copy sees.
            version = int(src.execute("SELECT max(version) FROM schema_version").fetchone()[0])
            src.backup(dst, pages=pages_per_step, progress=lambda *_: time.sleep(pause))
            src.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot back up {source}: {exc}") from exc
    return version


def _check(path: Path) -> int:
    """Raise StoreUnavailable unless the copy passes ``PRAGMA integrity_check``; its
    page count."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    if problems != ["ok"]:
        raise StoreUnavailable(f"the copy failed its integrity check: {'; '.join(problems[:3])}")
    return pages
