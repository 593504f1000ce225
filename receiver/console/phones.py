"""Phone numbers in the console: masking for the ``viewer`` role and reading a
number typed "any usual way". Sans-IO: plain functions over strings.

Masking keeps the country calling code and the last 4 digits
(``+639171234567`` -> ``+63******4567``): enough to tell two customers apart on the
phone, not enough to contact one. A short number never shows more than half of its
digits (``12345`` -> ``***45``). ``sender`` and ``admin`` see full numbers (a
sender already supplies numbers when it sends).
"""

from __future__ import annotations

import re

import phonenumbers

MASK = "*"
_TYPED = re.compile(r"\+?[ (]*[0-9][0-9 ()./-]*")
FULL_NUMBER_ROLES = frozenset({"sender", "admin"})


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


def parse_phone(text: str, region: str | None) -> str | None:
    """E.164 form of ``text`` ("+63 917 123 4567", "0917-123-4567", "(415) 555-0100")
    read with ``region`` for numbers without a country code; None if it is not a
    possible phone number."""
    candidate = text.strip()
    if not _TYPED.fullmatch(candidate):
        return None  # phonenumbers would read "order-8812" as a number
    try:
        number = phonenumbers.parse(candidate, None if candidate.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:  # not even "local only"
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
