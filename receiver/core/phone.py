"""Phone numbers as providers write them, normalized to E.164."""

from __future__ import annotations

import re

import phonenumbers

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_E164 = re.compile(E164_PATTERN)
_NUMBER = re.compile(r"\+?([1-9][0-9]{6,14})")


def e164(number: str | None) -> str | None:
    """``number`` as E.164 (``41793026727`` -> ``+41793026727``); None when it is not a
    phone number (a short code, an alphanumeric sender, an empty field)."""
    if not number:
        return None
    match = _NUMBER.fullmatch(number.strip())
    return "+" + match[1] if match else None


def valid_e164(number: str) -> str:
    """``number`` (surrounding spaces dropped) if it is an E.164 number in a range that
    libphonenumber knows to be assigned; ValueError saying what is wrong otherwise."""
    candidate = number.strip()
    if not _E164.fullmatch(candidate):
        raise ValueError(f"{number!r} is not in E.164 form (+<country code><number>)")
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(candidate))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise ValueError(f"{number!r} is not a valid phone number (no such number range)")
    return candidate
