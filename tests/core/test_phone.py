"""Phone numbers as a role may see them (receiver.core.phone; sans-IO)."""

from __future__ import annotations

import pytest

from receiver.core.phone import mask_phone


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
