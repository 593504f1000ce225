"""The signed-timestamp check shared by schemes that sign one (replay protection)."""

from __future__ import annotations

import re

from receiver.errors import SignatureError

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def parse_timestamp(raw: str) -> int:
    """Integer Unix seconds; ValueError unless ``raw`` is plain digits."""
    if not _UNIX_SECONDS.fullmatch(raw):
        raise ValueError("must be integer Unix seconds")
    return int(raw)


def check_window(moment: float, *, now: float, tolerance_seconds: int, name: str) -> None:
    """SignatureError (STALE or FUTURE) unless ``moment`` is within the window around ``now``."""
    if moment < now - tolerance_seconds:
        raise SignatureError(f"{name} is older than {tolerance_seconds} s", code="TIMESTAMP_STALE")
    if moment > now + tolerance_seconds:
        raise SignatureError(
            f"{name} is more than {tolerance_seconds} s in the future", code="TIMESTAMP_FUTURE"
        )


def check_timestamp(name: str, raw: str, *, now: float, tolerance_seconds: int) -> int:
    """The Unix-seconds timestamp ``raw`` (named ``name`` in errors), if within the
    window; SignatureError (MALFORMED, STALE or FUTURE) otherwise."""
    try:
        timestamp = parse_timestamp(raw)
    except ValueError as exc:
        raise SignatureError(f"{name} {exc}", code="SIGNATURE_MALFORMED") from None
    check_window(timestamp, now=now, tolerance_seconds=tolerance_seconds, name=name)
    return timestamp
