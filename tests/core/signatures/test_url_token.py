"""The secret token in a callback URL (providers whose reports are not signed)."""

from __future__ import annotations

import pytest

from receiver.core.signatures import url_token
from receiver.errors import SignatureError

TOKEN = "tok_4f1c2b9e8d7a6b5c4d3e2f1a"


def test_the_configured_token_passes():
    url_token.verify(f"token={TOKEN}".encode(), TOKEN)
    url_token.verify(f"a=1&token={TOKEN}&b=2".encode(), TOKEN)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (b"", "SIGNATURE_MISSING"),
        (b"a=1", "SIGNATURE_MISSING"),
        (b"token=", "SIGNATURE_INVALID"),
        (b"token=tok_wrong", "SIGNATURE_INVALID"),
        (f"token={TOKEN}x".encode(), "SIGNATURE_INVALID"),
        (f"token={TOKEN}&token={TOKEN}".encode(), "SIGNATURE_MALFORMED"),
        (f"TOKEN={TOKEN}".encode(), "SIGNATURE_MISSING"),
        (b"token=%ff%fe", "SIGNATURE_INVALID"),
    ],
)
def test_anything_else_is_refused(query, code):
    with pytest.raises(SignatureError) as refused:
        url_token.verify(query, TOKEN)
    assert refused.value.code == code
    assert TOKEN not in refused.value.detail


def test_a_token_with_url_special_characters_survives_the_round_trip():
    token = "a~b.c_d-e" * 3
    url = url_token.with_token("https://dlr.example.com/webhooks/acme", token)
    assert url == f"https://dlr.example.com/webhooks/acme?token={token}"
    url_token.verify(url.partition("?")[2].encode(), token)


def test_the_stored_target_never_holds_the_token_and_replay_puts_it_back():
    target = f"/webhooks/acme?order=7&token={TOKEN}&x=y"
    stored = url_token.redact(target)
    assert stored == "/webhooks/acme?order=7&token=REDACTED&x=y"
    assert url_token.restore(stored, TOKEN) == target
    assert url_token.redact("/webhooks/acme") == "/webhooks/acme"


def test_with_token_adds_to_an_existing_query():
    assert url_token.with_token("https://h/w?a=1", "t" * 24) == "https://h/w?a=1&token=" + "t" * 24
    assert url_token.with_token("https://h/w", None) == "https://h/w"
