"""Phone numbers as providers write them, normalized to E.164."""

from __future__ import annotations

import re

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_NUMBER = re.compile(r"\+?([1-9][0-9]{6,14})")


def e164(number: str | None) -> str | None:
    """``number`` as E.164 (``41793026727`` -> ``+41793026727``); None when it is not a
    phone number (a short code, an alphanumeric sender, an empty field)."""
    if not number:
        return None
    match = _NUMBER.fullmatch(number.strip())
    return "+" + match[1] if match else None
