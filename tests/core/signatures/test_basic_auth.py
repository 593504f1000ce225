from __future__ import annotations

import base64

import pytest

from receiver.core.signatures import basic_auth
from receiver.errors import SignatureError

CREDENTIALS = ["jasmin:s3cret-one", "jasmin:s3cret-two"]


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_every_configured_credential_is_accepted(credential):
    basic_auth.verify({"authorization": basic_auth.header(credential)}, CREDENTIALS)


def test_the_scheme_name_is_case_insensitive():
    encoded = base64.b64encode(CREDENTIALS[0].encode()).decode()
    basic_auth.verify({"authorization": f"basic {encoded}"}, CREDENTIALS)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "SIGNATURE_MISSING"),
        ("", "SIGNATURE_MISSING"),
        ("Bearer abc", "SIGNATURE_MISSING"),
        ("Basic", "SIGNATURE_MISSING"),
        ("Basic !!!not-base64!!!", "SIGNATURE_MALFORMED"),
        ("Basic " + base64.b64encode(b"jasmin:wrong").decode(), "SIGNATURE_INVALID"),
        ("Basic " + base64.b64encode(b"jasmin:s3cret-one ").decode(), "SIGNATURE_INVALID"),
        ("Basic " + base64.b64encode(b"").decode() + "=", "SIGNATURE_MALFORMED"),
    ],
)
def test_missing_malformed_or_wrong_credentials_are_refused(authorization, code):
    headers = {} if authorization is None else {"authorization": authorization}
    with pytest.raises(SignatureError) as info:
        basic_auth.verify(headers, CREDENTIALS)
    assert info.value.code == code
    assert "s3cret" not in info.value.detail


def test_header_round_trips():
    assert basic_auth.header("a:b") == "Basic YTpi"
