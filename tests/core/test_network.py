"""Destination country and network (README "Delivery health"): pure functions."""

from __future__ import annotations

import pytest

from receiver.core.network import country_of, network_code, network_of


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+639171234567", "PH"),
        ("+447700900123", "GB"),  # a drama range: no region by range, GB by calling code
        ("+14155550100", "US"),
        ("+80012345678", None),  # a non-geographic calling code
        (None, None),
        ("", None),
    ],
)
def test_country_of(number: str | None, country: str | None) -> None:
    assert country_of(number) == country


@pytest.mark.parametrize(
    ("value", "network"),
    [
        ("51502", "515-02"),
        ("310260", "310-260"),
        (51502, "515-02"),
        ("515-02", "515-02"),
        (" 515 03 ", "515-03"),
        ("5150", None),
        ("5150234", None),
        ("T-MOBILE USA, INC.", None),
        (True, None),
        (None, None),
        (51.502, None),
    ],
)
def test_network_code(value: object, network: str | None) -> None:
    assert network_code(value) == network


def test_network_of_separate_fields() -> None:
    assert network_of("515", "02") == "515-02"
    assert network_of(515, "002") == "515-002"
    assert network_of("515", 2) is None  # was it 02 or 002?
    assert network_of("", "") is None
