"""Sinch callback signatures (``x-sinch-webhook-signature``, HMAC-SHA256 with a nonce).

Sinch signs a callback, where signing is enabled, with four headers:

    x-sinch-webhook-signature            base64(HMAC-SHA256(secret, signed_data))
    x-sinch-webhook-signature-nonce      a unique nonce
    x-sinch-webhook-signature-timestamp  Unix seconds, when the signature was computed
    x-sinch-webhook-signature-algorithm  "HmacSHA256" (the only value Sinch uses)

    signed_data = raw body || "." || nonce || "." || timestamp

The key is the secret's UTF-8 bytes (not base64-decoded). Sources: the Conversation API
callback docs ("Validating Callbacks"); the official Python SDK ``sinch`` 2.3,
``sinch.domains.authentication.sinch_events.v1.authentication_validation``
(``compute_signed_data``, ``calculate_sinch_event_signature``), which its
``SmsSinchEvent.validate_authentication_header`` uses for SMS API callbacks too; the
official .NET and Java SDKs (``HmacAuthenticationValidation``), whose tests use Unix
seconds such as ``1736760161`` for the timestamp.

The SDKs check only the signature. We also refuse a timestamp outside
``tolerance_seconds`` either way (the docs ask receivers to), and an algorithm header
other than ``HmacSHA256``. Nonces are not tracked here (sans-IO): a replay within the
window carries a report whose derived event id is already processed, so it changes
nothing. Every malformed header is a ``SignatureError``, never a ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from receiver.core.signatures.freshness import check_timestamp
from receiver.errors import SignatureError

SIGNATURE_HEADER = "x-sinch-webhook-signature"
NONCE_HEADER = "x-sinch-webhook-signature-nonce"
TIMESTAMP_HEADER = "x-sinch-webhook-signature-timestamp"
ALGORITHM_HEADER = "x-sinch-webhook-signature-algorithm"
ALGORITHM = "HmacSHA256"

_MAX_NONCE_LENGTH = 255
_DIGEST_SIZE = hashlib.sha256().digest_size


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The verified nonce and timestamp (Unix seconds) of a signed callback."""

    nonce: str
    timestamp: int


def signed_data(body: bytes, nonce: str, timestamp: str) -> bytes:
    """``body.nonce.timestamp``: the bytes Sinch signs (SDK ``compute_signed_data``)."""
    return body + b"." + nonce.encode() + b"." + timestamp.encode()


def signature(secret: str, body: bytes, nonce: str, timestamp: str | int) -> str:
    """The base64 ``x-sinch-webhook-signature`` of one callback."""
    digest = hmac.new(
        secret.encode(), signed_data(body, nonce, str(timestamp)), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(secret: str, body: bytes, nonce: str, timestamp: int) -> dict[str, str]:
    """All four signature headers Sinch sends with a callback."""
    return {
        SIGNATURE_HEADER: signature(secret, body, nonce, timestamp),
        NONCE_HEADER: nonce,
        TIMESTAMP_HEADER: str(timestamp),
        ALGORITHM_HEADER: ALGORITHM,
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int,
) -> SignedHeaders:
    """Check a callback's Sinch signature over the raw body; ``headers`` keys are lower case.

    Every secret of a rotation is tried. Raises SignatureError with a code naming the
    failed check.
    """
    raw_signature = headers.get(SIGNATURE_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    raw_timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not (raw_signature and nonce and raw_timestamp):
        raise SignatureError(
            f"{SIGNATURE_HEADER}, {NONCE_HEADER} and {TIMESTAMP_HEADER} are all required",
            code="SIGNATURE_MISSING",
        )
    algorithm = headers.get(ALGORITHM_HEADER)
    if algorithm is not None and algorithm != ALGORITHM:
        raise SignatureError(f"{ALGORITHM_HEADER} must be {ALGORITHM}", code="SIGNATURE_MALFORMED")
    if len(nonce) > _MAX_NONCE_LENGTH or not nonce.isprintable():
        raise SignatureError(f"{NONCE_HEADER} is malformed", code="SIGNATURE_MALFORMED")
    timestamp = check_timestamp(
        TIMESTAMP_HEADER, raw_timestamp, now=now, tolerance_seconds=tolerance_seconds
    )
    try:
        offered = base64.b64decode(raw_signature, validate=True)
    except (binascii.Error, ValueError):
        offered = b""
    if len(offered) != _DIGEST_SIZE:
        raise SignatureError(
            f"{SIGNATURE_HEADER} is not a base64 HMAC-SHA256", code="SIGNATURE_MALFORMED"
        )
    matched = False
    for secret in secrets:
        expected = base64.b64decode(signature(secret, body, nonce, raw_timestamp))
        # Keep comparing after a match: time must not depend on which secret matched.
        matched |= hmac.compare_digest(expected, offered)
    if not matched:
        raise SignatureError("the signature matches no configured secret")
    return SignedHeaders(nonce=nonce, timestamp=timestamp)
