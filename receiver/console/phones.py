"""Phone numbers typed in the console "any usual way", read as E.164. Sans-IO.

Masking for the ``viewer`` role is ``receiver.core.phone.mask_phone``, shared with the
JSON API.
"""

from __future__ import annotations

import re

import phonenumbers

_TYPED = re.compile(r"\+?[ (]*[0-9][0-9 ()./-]*")


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
