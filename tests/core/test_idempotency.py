"""The Idempotency-Key header and the request fingerprint, without any I/O."""

from __future__ import annotations

import pytest

from receiver.core.idempotency import MAX_KEY_LENGTH, fingerprint, parse_key
from receiver.errors import BadRequest


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("  spaced  ", "spaced"),
        ('"a \\"quoted\\" \\\\ key"', 'a "quoted" \\ key'),
        ("k", "k"),
        ("k" * MAX_KEY_LENGTH, "k" * MAX_KEY_LENGTH),
        ('"unbalanced', '"unbalanced'),
    ],
)
def test_a_key_is_read_bare_or_as_a_structured_field_string(header, key):
    assert parse_key(header) == key


@pytest.mark.parametrize(
    "header",
    ["", "   ", '""', "k" * (MAX_KEY_LENGTH + 1), "caf\xe9", "tab\there"],
    ids=["empty", "blank", "empty string", "too long", "not ascii", "control"],
)
def test_a_bad_key_is_a_400_naming_the_header(header):
    with pytest.raises(BadRequest) as caught:
        parse_key(header)
    assert caught.value.code == "IDEMPOTENCY_KEY_INVALID"
    assert caught.value.field == "Idempotency-Key"


def test_the_fingerprint_ignores_key_order_but_not_content():
    one = fingerprint("POST", "/v1/messages", {"to": "+639171234567", "body": "hi"})
    assert one == fingerprint("post", "/v1/messages", {"body": "hi", "to": "+639171234567"})
    assert len(one) == 64
    assert one != fingerprint("POST", "/v1/messages", {"to": "+639171234567", "body": "hi!"})
    assert one != fingerprint("POST", "/v1/other", {"to": "+639171234567", "body": "hi"})
    assert one != fingerprint("PUT", "/v1/messages", {"to": "+639171234567", "body": "hi"})
