"""Header bytes outside ASCII against a real ``receiver serve``.

HTTP lets a field value carry bytes 0x80-0xFF (obs-text); Starlette reads them as
latin-1. ``Authorization: Basic`` followed by such a byte made ``base64.b64decode`` raise
a ValueError: a 500 to Infobip, Jasmin and Sinch (basic). Now it is a 401 like any other
malformed credential, and the other signed headers behave the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import Server, running_server
from every_provider import ISO_BUILDERS, OTHER_BUILDERS, PROVIDERS

BUILDERS = {**ISO_BUILDERS, **OTHER_BUILDERS}
SIGNED_HEADERS = {
    "standard": ["webhook-id", "webhook-timestamp", "webhook-signature"],
    "vonage-messages": ["authorization"],
    "plivo": ["x-plivo-signature-v3", "x-plivo-signature-v3-nonce"],
    "telnyx": ["telnyx-timestamp", "telnyx-signature-ed25519"],
    "sinch": ["x-sinch-webhook-signature", "x-sinch-webhook-signature-timestamp"],
    "infobip": ["authorization"],
    "bird": ["messagebird-signature-jwt"],
    "jasmin": ["authorization"],
    "twilio": ["x-twilio-signature"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "raw-headers", providers=PROVIDERS) as started:
        yield started


@pytest.mark.parametrize(
    ("kind", "header"),
    [(kind, header) for kind, headers in SIGNED_HEADERS.items() for header in headers],
)
@pytest.mark.parametrize("value", [b"Basic \xe9\xe9\xe9\xe9", b"\xff", b"1700000000\xa0"])
def test_a_signed_header_with_a_byte_outside_ascii_is_a_401(
    server: Server, kind: str, header: str, value: bytes
) -> None:
    request = BUILDERS[kind]("2026-11-23T09:59:58Z", server.base_url).request
    headers: dict[str, str | bytes] = {
        name: text for name, text in request.headers.items() if name.lower() != header
    }
    headers[header] = value
    answer = httpx.request(
        request.method, server.base_url + request.path, content=request.body, headers=headers
    )
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
