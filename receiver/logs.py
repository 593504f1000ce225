"""JSON-lines logging with phone numbers masked.

Every record becomes one JSON object per line, and phone numbers are masked anywhere in
the line (message, extras, exception text) by ``receiver.core.phone.mask_phone_numbers``,
so a full number never reaches the logs (README "HTTP API"). Secrets are never passed
to a logger. The two kinds of number it masks:

1. E.164: ``+`` and 7-15 digits, single spaces, dots or dashes allowed between them:
   ``+63 917 123 4567`` becomes ``+63********67``.
2. A number written without ``+``, as providers do in their own text ("Destination
   639171234569 is barred", "0917-123-4567 unreachable"): 8-15 digits standing alone,
   in groups joined by one space or dash, perhaps after an area code in brackets
   (``(415) 555-0100``). It becomes ``63********69``.

Why these bounds for rule 2: 8 digits is the shortest number with its area or country
code that is worth hiding (a bare 7-digit local number names nobody without them), and
E.164 allows at most 15. "Standing alone" keeps what operators need, which is never
such a run: not part of a word or an id (a letter, digit, ``_``, ``+`` or ``*``
touches it, as in ``msg_01J9Z8...``, ``evt_12345678`` or a 32-hex-digit request id,
or it is a group of a dashed id such as a UUID), not a decimal, a time, an address or
a port (``12345678.5``, ``10:15``, ``127.0.0.1:8000``: a ``.``, ``:`` or ``,``
joins it to another digit), and not a date (``2026-11-23``). Durations, counts, ports,
status and error codes have fewer than 8 digits. What is lost: a count, a Unix time or
a client's own ``X-Request-ID`` of 8-15 bare digits is masked too, as it cannot be told
from a number.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from receiver.core.phone import mask_phone_numbers

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured twin of the message
}


PREMASKED = "_premasked"
"""A record attribute (``extra={PREMASKED: True}``): its creator masked the message and
every text field (``mask_phone_numbers``, ``mask_repeated``), so the formatter skips its
mask over the whole line. For the access line, the one written per request."""

_ENCODER = json.JSONEncoder(default=str)  # json.dumps(..., default=str) builds one per call


@functools.lru_cache(maxsize=4096)
def mask_repeated(text: str) -> str:
    """``mask_phone_numbers`` for text that repeats (a route's path, a client address),
    from a cache."""
    return mask_phone_numbers(text)


def _entry(created: float, level: str, logger: str, message: str) -> dict[str, Any]:
    """A line's first fields, in their order: ``created`` (``time.time()``) in UTC to
    the millisecond, the level in lower case, the logger's name, the message."""
    moment = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return {"time": moment, "level": level.lower(), "logger": logger, "message": message}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record.created, record.levelname, record.name, record.getMessage())
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = _ENCODER.encode(entry)
        if getattr(record, PREMASKED, False) and not record.exc_info:
            return line
        # Mask the whole line, so no field of any type can carry a full number.
        return mask_phone_numbers(line)


class LineHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that, on an event loop, writes one loop iteration's lines in one
    write: the access line of every request cost a write system call of its own
    (docs/performance.md). A line is still written within the iteration that logged
    it; WARNING and above, and lines logged off the loop, are written at once (after
    any waiting lines, so the order is kept)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held
        try:
            self._add(self.format(record), record.levelno)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str, level: int) -> None:
        """Write ``line``, formatted elsewhere, as ``emit`` writes a record's line."""
        with self.lock:  # type: ignore[union-attr]  # set by createLock()
            self._add(line, level)

    def _add(self, line: str, level: int) -> None:
        self._lines.append(line + self.terminator)
        if level < logging.WARNING and len(self._lines) < 1000:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                if len(self._lines) == 1:
                    loop.call_soon(self.flush)
                return
        self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # set by createLock()
            self._write()

    def _write(self) -> None:
        if self._lines:
            text, self._lines = "".join(self._lines), []
            self.stream.write(text)
        self.stream.flush()


def info_premasked(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """Log ``message`` with ``fields`` at INFO, their text already masked (the access
    line, written per request). Where every handler the record would reach is a
    ``LineHandler`` with the ``JsonFormatter`` and no filter (as ``configure`` sets up),
    the line those would write goes to them straight, without a ``LogRecord`` and the
    handler chain, at about a third of the cost (docs/performance.md). Otherwise (a
    test's capture handler, say) it is logged as any record with ``PREMASKED``."""
    handlers = _line_handlers(logger)
    if handlers is None:
        logger.info(message, extra={**fields, PREMASKED: True})
        return
    entry = _entry(time.time(), "INFO", logger.name, message)
    entry.update(fields)
    line = _ENCODER.encode(entry)
    for handler in handlers:
        handler.write_line(line, logging.INFO)


def _line_handlers(logger: logging.Logger) -> list[LineHandler] | None:
    """The handlers an INFO record of ``logger`` would be written by, if every handler
    on its way is a filterless ``LineHandler`` with the ``JsonFormatter``; else None."""
    if logger.filters:
        return None
    found: list[LineHandler] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not (
                type(handler) is LineHandler
                and type(handler.formatter) is JsonFormatter
                and not handler.filters
            ):
                return None
            if handler.level <= logging.INFO:
                found.append(handler)
        current = current.parent if current.propagate else None
    return found


def configure(level: str = "INFO") -> None:
    """Send every logger (uvicorn's included) to stderr as JSON lines."""
    # The formatter writes none of these: skip computing them for every record (the
    # logging HOWTO's "Optimization" section; _srcfile = None skips finding the caller).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
