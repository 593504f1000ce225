"""The one rule for timestamps from outside: providers' fields and headers, staff filters,
console searches and CLI options.

Theory of operation: every such timestamp becomes an aware UTC ``datetime`` whose UTC
year is 1 to 9999, or it is refused with ``ValueError`` whose message says what is wrong
(the caller names the field: ``PayloadInvalid`` in a provider parser, ``BadRequest`` on
the staff API, a form error in the console, one line and exit 2 in the CLI). A value
inside Python's range can still fall outside it once converted: ``0001-01-01T00:00:00+01:00``
is 31 December of year 0 in UTC, which ``astimezone`` answers with ``OverflowError``, and
``receiver.store.base.to_text`` would too. Checking here, once, means the store can
always write what a parser returns, and comparisons never fail.

A time written without a zone is read as UTC: the formats that omit it (Plivo, Vonage's
``message-timestamp``, SMPP receipts, an HTML ``datetime-local`` field) are UTC or have no
knowable zone. Formats that require an offset say so by using ``parse_rfc3339`` or
``AwareUtcDatetime``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, PlainValidator

RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
"""What a timestamp may name, as said in errors."""

_EARLIEST = datetime.min.replace(tzinfo=UTC).timestamp()
_LATEST = datetime.max.replace(tzinfo=UTC).timestamp()

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
"""RFC 3339 section 5.6 ``date-time`` (JSON Schema's ``format: date-time``); fractions
are cut to microseconds, the most ``datetime`` holds."""


def as_utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC (one without a zone is read as UTC); ValueError when the
    instant falls outside ``RANGE``."""
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"is outside {RANGE} once converted to UTC") from None


def from_unix(seconds: object) -> datetime:
    """Unix time (seconds, integer or not) as aware UTC; ValueError when it is not a
    finite number within ``RANGE``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError("must be a number of seconds since 1970-01-01T00:00:00Z")
    # Checked as given: float() of a huge int raises OverflowError, and NaN would pass
    # every comparison below by failing it.
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError("must be a finite number of seconds")
    try:
        if _EARLIEST <= seconds <= _LATEST:
            return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):  # rounded past the last microsecond
        pass
    raise ValueError(f"is outside {RANGE}")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or date and time (what ``datetime.fromisoformat`` reads, e.g.
    ``2026-11-23``, ``2026-11-23T09:59``, ``2026-11-23T09:59:58+08:00``) as aware UTC, a
    time without offset read as UTC; ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("is not an ISO 8601 date or time") from None
    return as_utc(moment)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 ``date-time`` with its offset (``2026-11-23T09:59:58Z``,
    ``2026-11-23T17:59:58.5+08:00``) as aware UTC; ValueError otherwise."""
    if not _RFC3339.fullmatch(text):
        raise ValueError("must be an RFC 3339 date-time with an offset")
    try:
        moment = datetime.fromisoformat(text.upper())  # fromisoformat wants "T" and "Z"
    except ValueError:
        raise ValueError("is not a valid date and time") from None
    return as_utc(moment)


def _rfc3339_value(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    return parse_rfc3339(value)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A pydantic field: any date-time pydantic reads (ISO 8601 text, Unix time), without
a zone read as UTC, returned as aware UTC within ``RANGE``."""

AwareUtcDatetime = Annotated[AwareDatetime, AfterValidator(as_utc)]
"""As ``UtcDatetime``, but a value without an offset is refused."""

Rfc3339Datetime = Annotated[datetime, PlainValidator(_rfc3339_value)]
"""A pydantic field read with ``parse_rfc3339`` only (a query parameter, say)."""


__all__ = [
    "RANGE",
    "AwareUtcDatetime",
    "Rfc3339Datetime",
    "UtcDatetime",
    "as_utc",
    "from_unix",
    "parse_iso",
    "parse_rfc3339",
]
