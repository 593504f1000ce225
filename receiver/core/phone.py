"""Phone numbers: as providers write them, normalized to E.164; and as a role may
see them.

Masking keeps the country calling code and the last 4 digits
(``+639171234567`` -> ``+63******4567``): enough to tell two customers apart on the
phone, not enough to contact one. A short number never shows more than half of its
digits (``12345`` -> ``***45``). ``sender`` and ``admin`` see full numbers (a
sender already supplies numbers when it sends); a ``viewer``, in the console and in
every JSON answer (README "HTTP API"), sees them masked.
"""

from __future__ import annotations

import re

import phonenumbers

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_E164 = re.compile(E164_PATTERN)
_NUMBER = re.compile(r"\+?([1-9][0-9]{6,14})")
MASK = "*"
FULL_NUMBER_ROLES = frozenset({"sender", "admin"})

# The two kinds of number in free text (receiver/logs.py says which digit runs count).
_PHONE = re.compile(r"\+[1-9](?:[ .-]?[0-9]){6,14}")
# The first character is matched before the look-behinds (which therefore look one
# character further back): a pattern that starts with a character set lets the regex
# engine skip to candidates, a third of the cost of testing every position.
_BARE_NUMBER = re.compile(
    r"[(0-9](?<![\w+*][(0-9])(?<![0-9A-Za-z]-[(0-9])(?<![0-9][.:,][(0-9])"  # not a tail
    r"(?:(?<=\()\d{1,4}\)[ -]?(?:\d[ -]?){3,13}\d"  # (415) 555-0100
    r"|(?<=[0-9])(?!\d{3}-\d\d-\d\d)(?:[ -]?\d){7,14})"  # 639171234569, not 2026-11-23
    r"(?![\w*])(?!-[0-9A-Za-z])(?![.:,][0-9])"  # not the head of a word, id or decimal
)


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


def mask_phone(number: str | None, role: str) -> str:
    """``number`` as the ``role`` may see it; "" for no number."""
    if not number:
        return ""
    if role in FULL_NUMBER_ROLES:
        return number
    digits = [c for c in number if c.isdigit()]
    keep_tail = min(4, len(digits) // 2)  # a short code never shows more than half
    prefix = ""
    if number.startswith("+"):
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            parsed = None
        code = str(parsed.country_code) if parsed and parsed.country_code else ""
        if len(digits) - len(code) > keep_tail:
            prefix = "+" + code
            digits = digits[len(code) :]
        else:
            prefix = "+"
    hidden = len(digits) - keep_tail
    return prefix + MASK * hidden + "".join(digits[hidden:])


def _masked_digits(text: str) -> str:
    digits = re.sub(r"[^0-9]", "", text)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def _mask_e164(match: re.Match[str]) -> str:
    return "+" + _masked_digits(match[0])


def _mask_bare(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match[0])
    return _masked_digits(match[0]) if 8 <= digits <= 15 else match[0]


def mask_phone_numbers(text: str) -> str:
    """``+639171234567`` (or ``+63 917 123 4567``) becomes ``+63********67``, and a
    number without ``+`` standing alone, ``639171234567``, becomes ``63********67``
    (the module docstring says which digit runs count as numbers)."""
    return _BARE_NUMBER.sub(_mask_bare, _PHONE.sub(_mask_e164, text))


def mask_text(text: str | None, role: str) -> str | None:
    """Free text (a provider's error message) as ``role`` may see it: for a viewer,
    every phone number in it masked as in the logs ("Destination 63********69 is
    barred"), so no answer shows a viewer a full number (README "HTTP API")."""
    if text is None or role in FULL_NUMBER_ROLES:
        return text
    return mask_phone_numbers(text)
