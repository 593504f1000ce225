"""Reading phone numbers typed in the console (sans-IO, no server)."""

from __future__ import annotations

import pytest

from receiver.console.phones import parse_phone


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("+63 917 123 4567", None, "+639171234567"),
        ("+63 917 123 4567", "US", "+639171234567"),
        ("0917 123 4567", "PH", "+639171234567"),
        ("0917-123-4567", "PH", "+639171234567"),
        ("(0917) 123.4567", "PH", "+639171234567"),
        ("0917/123/4567", "PH", "+639171234567"),
        ("00 63 917 123 4567", "PH", "+639171234567"),  # PH's international prefix
        ("(415) 555-0100", "US", "+14155550100"),
        ("415.555.0100", "US", "+14155550100"),
        ("011 63 917 123 4567", "US", "+639171234567"),
        ("  +1 415 555 0100 ", None, "+14155550100"),
    ],
)
def test_parse_phone(typed: str, region: str | None, e164: str) -> None:
    assert parse_phone(typed, region) == e164


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("0917 123 4567", None),  # a local number needs a region
        ("12", "PH"),
        ("", "PH"),
        ("order-8812", "PH"),
        ("8812", "PH"),  # possible only as a local number within an area
        ("0917 123 4567 ext. 5", "PH"),
        ("+63 917 CALL NOW", None),
        ("+", None),
        ("+999 123", None),
    ],
)
def test_parse_phone_refuses(typed: str, region: str | None) -> None:
    assert parse_phone(typed, region) is None
