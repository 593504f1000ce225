"""Where a message went: the destination country of its number and the mobile network
a provider's report names (README "Delivery health"). Pure functions, no I/O.

The country comes from the E.164 number (libphonenumber's region of the number). The
network is never guessed from the number's prefix (numbers are ported between
networks): only a report that names it (as MCC and MNC) sets it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_JOINED = re.compile(r"([0-9]{3})([0-9]{2,3})")
_SPLIT = re.compile(r"([0-9]{3})[-/ ]([0-9]{2,3})")
_MCC = re.compile(r"[0-9]{3}")
_MNC = re.compile(r"[0-9]{2,3}")
NETWORK_PATTERN = r"^[0-9]{3}-[0-9]{2,3}$"
"""The form of ``network`` in JSON (``"515-02"``): MCC, a hyphen, MNC."""
NETWORK_FILTER_PATTERN = r"^([0-9]{3}-[0-9]{2,3}|unknown)$"

UNKNOWN = "unknown"
"""As a ``country`` or ``network`` filter: the messages that have none."""
COUNTRY_PATTERN = r"^([A-Z]{2}|unknown)$"
UNKNOWN_REGION = "ZZ"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_ONE_REGION = {
    str(code): regions[0]
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
    if len(regions) == 1
}
"""Calling codes that belong to one region (63 -> PH, 49 -> DE), as text."""


def country_of(number: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 region of an E.164 number (``+639171234567`` -> ``PH``),
    or None when there is no number or its calling code belongs to no region (``+800``)."""
    if not number:
        return None
    if _E164.fullmatch(number):
        # Calling codes are prefix-free: the first of 1, 2 or 3 digits that is one is
        # the number's. Where it has one region, that is the answer libphonenumber gives,
        # without its parse (30 us per new message at ingest; docs/performance.md).
        for digits in (number[1:2], number[1:3], number[1:4]):
            if digits in _ONE_REGION:
                return _country(_ONE_REGION[digits])
    return parsed_country(number)


PARSED_COUNTRIES_CACHED = 16384
"""Numbers whose parsed country is remembered (about 3 MB): a parse costs 25-50 us for
the calling codes that several regions share (+1, +44, +7; docs/performance.md), and
a message's number is asked for again by each report that merges into it."""


@lru_cache(maxsize=PARSED_COUNTRIES_CACHED)
def parsed_country(number: str) -> str | None:
    """``country_of`` by libphonenumber's parse of the whole number, for any number."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    # A number in no range libphonenumber knows (a test range, a new block) still has
    # a country calling code: its main region (44 -> GB, 1 -> US).
    return _country(
        phonenumbers.region_code_for_number(parsed)
        or phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )


def _country(region: str | None) -> str | None:
    """A region code as a country: None for none, ``ZZ`` and ``001`` (non-geographic)."""
    return region if region and region.isalpha() and region != UNKNOWN_REGION else None


def network_code(value: object) -> str | None:
    """A provider's MCC+MNC as ``"MCC-MNC"``: from ``"51502"``, ``51502``, ``"515-02"``
    or ``"515 02"``; None for anything else (a report is never turned away for it).
    Five digits are a 2-digit MNC, six a 3-digit one (MCCs are always 3 digits)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    match = _JOINED.fullmatch(text) or _SPLIT.fullmatch(text)
    return f"{match[1]}-{match[2]}" if match else None


def network_of(mcc: object, mnc: object) -> str | None:
    """``"MCC-MNC"`` from separate MCC and MNC fields (Plivo), or None unless both are
    digits of the right length. A numeric MNC given as a number (``2``) cannot say
    whether it was ``02`` or ``002``: only text is taken."""
    if not isinstance(mcc, str | int) or not isinstance(mnc, str) or isinstance(mcc, bool):
        return None
    mcc_text, mnc_text = str(mcc).strip(), mnc.strip()
    if _MCC.fullmatch(mcc_text) and _MNC.fullmatch(mnc_text):
        return f"{mcc_text}-{mnc_text}"
    return None
