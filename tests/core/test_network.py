"""Destination country and network (README "Delivery health"): pure functions."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from receiver.core.network import country_of, network_code, network_of, parsed_country


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+639171234567", "PH"),
        ("+447700900123", "GB"),  # a drama range: no region by range, GB by calling code
        ("+14155550100", "US"),
        ("+16132360000", "CA"),  # +1, +44, +7: calling codes of several regions
        ("+441481256789", "GG"),
        ("+77012345678", "KZ"),
        ("+4915112345678", "DE"),  # one region: no parse needed
        ("+80012345678", None),  # a non-geographic calling code
        (None, None),
        ("", None),
    ],
)
def test_country_of(number: str | None, country: str | None) -> None:
    assert country_of(number) == country


def test_country_of_agrees_with_libphonenumber_for_every_calling_code() -> None:
    """The one-region shortcut gives the answer of libphonenumber's parse: numbers of
    every calling code (and of none), of every length, valid or not."""
    rng = random.Random(16)
    codes = [str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    numbers = [
        "+" + code + "".join(rng.choices("0123456789", k=rng.randint(0, 14)))
        for code in [*codes * 20, *(str(rng.randint(1, 999)) for _ in range(2000))]
    ]
    differ = [n for n in numbers if country_of(n) != parsed_country(n)]
    assert differ == []
    assert {country_of("+63917" + str(n).zfill(7)) for n in range(50)} == {"PH"}


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
