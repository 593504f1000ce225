"""Masking and reading phone numbers (sans-IO, no server)."""

from __future__ import annotations

import pytest

from receiver.console.phones import mask_phone, parse_phone


@pytest.mark.parametrize(
    ("number", "role", "shown"),
    [
        ("+639171234567", "viewer", "+63******4567"),
        ("+14155550100", "viewer", "+1******0100"),
        ("+447700900123", "viewer", "+44******0123"),
        ("+41793026727", "viewer", "+41*****6727"),
        ("+639171234567", "sender", "+639171234567"),
        ("+639171234567", "admin", "+639171234567"),
        ("12345", "viewer", "***45"),  # a short code shows at most half its digits
        ("1234", "viewer", "**34"),
        ("+1234567", "viewer", "+1***567"),
        (None, "viewer", ""),
        ("", "admin", ""),
    ],
)
def test_mask_phone(number: str | None, role: str, shown: str) -> None:
    assert mask_phone(number, role) == shown


def test_an_unknown_role_is_masked() -> None:
    assert mask_phone("+639171234567", "auditor") == "+63******4567"


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
