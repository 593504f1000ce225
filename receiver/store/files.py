"""What the SQLite files need from their filesystem, checked before SQLite finds out.

SQLite reports most trouble as an error of the commit that meets it, which the writer
answers with 503 (receiver.store.sqlite). Three kinds of trouble it reports badly:

- **A nearly full disk.** A one-page commit still fits in the space the WAL already
  holds while the next batch of reports does not, so a probe said "ready" while reports
  failed. Below ``MIN_FREE_BYTES`` free, the writer refuses every commit (503) and
  ``/readyz`` answers 503; the reserve also leaves SQLite room to checkpoint.
- **A ``-shm`` file that changes under its mapping.** SQLite maps the ``-shm`` file (the
  WAL index) into memory. If it shrinks (truncated or replaced by another program), the
  next access is a SIGBUS, which killed the process without a log line. ``ShmGuard``
  looks at the file before each commit, each read and each readiness check and, if it
  shrank or was replaced, logs a critical line and exits with status 1 at once, since
  closing the database would touch the broken mapping; every report answered 2xx is
  already on disk. A change between the look and the access is still a SIGBUS, which
  ``receiver serve``'s ``faulthandler`` logs with every thread's traceback. Before
  opening, ``ensure_writable`` refuses files SQLite could only open read-only.
- **A WAL that cannot be checkpointed.** A long read keeps an old snapshot, so the WAL
  grows without bound (3 to 43 MB, silently). ``WalWatch`` warns when it passes
  ``WAL_WARN_BYTES`` and a checkpoint cannot finish; the metric
  ``receiver_sqlite_wal_bytes`` shows its size. The writer's ``journal_size_limit`` of
  ``WAL_KEEP_BYTES`` shrinks the file again once checkpoints finish.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import NoReturn

from receiver.errors import StoreUnavailable

log = logging.getLogger("receiver.store")

MIN_FREE_BYTES = 1024 * 1024
WAL_KEEP_BYTES = 16 * 1024 * 1024
"""The WAL is truncated to this size when it restarts after a complete checkpoint.
SQLite checkpoints at 1,000 pages (4 MB), so a healthy WAL stays below it."""
WAL_WARN_BYTES = 32 * 1024 * 1024
WAL_CHECK_SECONDS = 10.0
EXIT_BROKEN_STORE = 1


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def shm_path(database: Path) -> Path:
    return database.with_name(database.name + "-shm")


def file_size(path: Path) -> int:
    """The size of ``path`` in bytes, 0 when it does not exist."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def make_folder(database: Path) -> None:
    """Create the database's folder if it is missing; StoreUnavailable if it cannot be."""
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create {database.parent}: {exc.strerror}") from exc


def ensure_writable(database: Path) -> None:
    """Create the database's folder if it is missing. Refuse (StoreUnavailable) a folder
    that cannot be created, or a folder or files that cannot be written: SQLite would
    open them read-only (a read-only ``-shm`` included) and no report could ever be
    committed."""
    make_folder(database)
    folder = database.parent
    for path in (folder, database, wal_path(database), shm_path(database)):
        if path.exists() and not os.access(path, os.W_OK):
            read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
            why = "the file system is mounted read-only" if read_only else "no write permission"
            raise StoreUnavailable(f"cannot write {path}: {why}")


def check_free_space(database: Path) -> None:
    """Refuse (StoreUnavailable) to commit while the disk has less than MIN_FREE_BYTES."""
    try:
        stats = os.statvfs(database.parent)
    except OSError as exc:
        raise StoreUnavailable(f"cannot inspect {database.parent}: {exc.strerror}") from exc
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise StoreUnavailable(
            f"the disk holding {database} is full ({free} bytes free,"
            f" {MIN_FREE_BYTES} kept in reserve)"
        )


def _die(message: str) -> NoReturn:
    """Log one critical line and end the process without running any cleanup that
    would touch SQLite (and so the broken mapping) again."""
    log.critical(message)
    logging.shutdown()
    os._exit(EXIT_BROKEN_STORE)


class ShmGuard:
    """Exit loudly, before SQLite touches it, when the mapped ``-shm`` file shrank or
    was replaced. While the store is open our reader connection holds the file, so
    SQLite itself never truncates or deletes it."""

    def __init__(self, database: Path) -> None:
        self.path = shm_path(database).absolute()
        self._seen: tuple[int, int, int] | None = None  # device, inode, size
        self._lock = threading.Lock()  # the writer thread and the event loop both check

    def check(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            current = None
        else:
            current = (stat.st_dev, stat.st_ino, stat.st_size)
        with self._lock:
            seen = self._seen
            if seen is not None:
                if current is None or current[:2] != seen[:2]:
                    _die(
                        f"the SQLite shared-memory file {self.path} was deleted or replaced"
                        " under the running service; exiting before the database is damaged"
                    )
                if current[2] < seen[2]:
                    _die(
                        f"the SQLite shared-memory file {self.path} shrank from {seen[2]} to"
                        f" {current[2]} bytes under the running service (truncated by another"
                        " program?); exiting now, as touching it would crash with SIGBUS"
                    )
            if current is not None:
                self._seen = current


class WalWatch:
    """Warn when the WAL is over ``warn_bytes`` and a checkpoint cannot finish.
    Called by the writer after its commits; looks at most every ``every_seconds``."""

    def __init__(
        self,
        database: Path,
        warn_bytes: int = WAL_WARN_BYTES,
        every_seconds: float = WAL_CHECK_SECONDS,
    ) -> None:
        self.path = wal_path(database)
        self.warn_bytes = warn_bytes
        self.every_seconds = every_seconds
        self._next_check = 0.0

    def after_commit(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.every_seconds
        size = file_size(self.path)
        if size <= self.warn_bytes:
            return
        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied < frames:
            log.warning(
                "the WAL is %d bytes and still growing: a checkpoint could copy only %d of"
                " its %d pages, because a read transaction (in this or another process)"
                " keeps an old snapshot open",
                size,
                copied,
                frames,
                extra={"wal_bytes": size, "wal_pages": frames, "checkpointed_pages": copied},
            )
