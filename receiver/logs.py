"""JSON-lines logging with phone numbers masked.

Every record becomes one JSON object per line. Anything that looks like an E.164
number (``+`` and 7-15 digits, spaces, dots or dashes allowed between them) is
masked anywhere in the line, so a full phone number never reaches the logs.
Secrets are never passed to a logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_PHONE = re.compile(r"\+[1-9](?:[ .-]?[0-9]){6,14}")
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured twin of the message
}


def _mask(match: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", match[0])
    return "+" + digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def mask_phone_numbers(text: str) -> str:
    """``+639171234567`` (or ``+63 917 123 4567``) becomes ``+63*******67``."""
    return _PHONE.sub(_mask, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Mask the whole line, so no field of any type can carry a full number.
        return mask_phone_numbers(json.dumps(entry, default=str))


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
            self._lines.append(self.format(record) + self.terminator)
            if record.levelno < logging.WARNING and len(self._lines) < 1000:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    pass
                else:
                    if len(self._lines) == 1:
                        loop.call_soon(self.flush)
                    return
            self._write()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # set by createLock()
            self._write()

    def _write(self) -> None:
        if self._lines:
            text, self._lines = "".join(self._lines), []
            self.stream.write(text)
        self.stream.flush()


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
