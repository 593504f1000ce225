"""Telnyx webhook signatures: Ed25519 over ``{telnyx-timestamp}|{body}``.

Telnyx signs every API v2 webhook with its account's Ed25519 private key and sends
(https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks, "Webhook
signature verification"; the same check as ``telnyx`` 4.189's
``telnyx.lib.webhook_verification.verify_webhook_signature``):

- ``telnyx-timestamp``: Unix seconds when the event was signed;
- ``telnyx-signature-ed25519``: base64 of the 64-byte Ed25519 signature of the bytes
  ``{telnyx-timestamp}|{raw body}`` (the header text, a literal ``|``, the body).

It is verified with the account's *public* key, which the Telnyx portal shows as the
base64 of the 32 raw key bytes. There is no shared secret, so nothing here needs a
constant-time comparison: the signature check itself is the Ed25519 verification.
Unlike the SDK, the clock and tolerance are injected, the body stays bytes (the SDK
decodes it as UTF-8 first), several keys may be configured for a key change, and
every malformed header becomes a ``SignatureError`` with a code naming the check.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from receiver.core.signatures.freshness import check_timestamp
from receiver.errors import SignatureError

TIMESTAMP_HEADER = "telnyx-timestamp"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
# The standard alphabet with its padding; a length check follows.
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _b64decode(text: str) -> bytes:
    """Strict standard base64; ValueError for anything else (never binascii.Error)."""
    if not _BASE64.fullmatch(text) or len(text) % 4:
        raise ValueError("is not standard base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("is not standard base64") from exc


def load_public_key(text: str) -> Ed25519PublicKey:
    """The key behind a base64 public key as the Telnyx portal shows it; ValueError if
    it is not the base64 of 32 bytes."""
    try:
        raw = _b64decode(text.strip())
    except ValueError:
        raise ValueError(
            "must be the base64 of a 32-byte Ed25519 public key (as the Telnyx portal shows it)"
        ) from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(
            f"must be the base64 of a 32-byte Ed25519 public key, not of {len(raw)} bytes"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The base64 public key, as the Telnyx portal shows it (``public_key`` in config)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes_raw()).decode("ascii")


def signed_message(timestamp: str, body: bytes) -> bytes:
    """The bytes Telnyx signs: the timestamp header's text, ``|``, the raw body."""
    return timestamp.encode("ascii") + b"|" + body


def sign(private_key: Ed25519PrivateKey, timestamp: int, body: bytes) -> str:
    """The ``telnyx-signature-ed25519`` value for ``body`` sent at ``timestamp``
    (what Telnyx computes; for tests and tooling that hold a private key)."""
    signature = private_key.sign(signed_message(str(timestamp), body))
    return base64.b64encode(signature).decode("ascii")


def verify(
    body: bytes,
    headers: Mapping[str, str],
    keys: Sequence[Ed25519PublicKey],
    *,
    now: float,
    tolerance_seconds: int,
) -> int:
    """Check a Telnyx request's signature; ``headers`` keys are lower case.

    Returns the verified ``telnyx-timestamp``. Raises SignatureError with a code naming
    the failed check: SIGNATURE_MISSING, SIGNATURE_MALFORMED, TIMESTAMP_STALE,
    TIMESTAMP_FUTURE or SIGNATURE_INVALID.
    """
    raw_timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
    raw_signature = headers.get(SIGNATURE_HEADER, "").strip()
    if not (raw_timestamp and raw_signature):
        raise SignatureError(
            f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are both required",
            code="SIGNATURE_MISSING",
        )
    timestamp = check_timestamp(
        TIMESTAMP_HEADER, raw_timestamp, now=now, tolerance_seconds=tolerance_seconds
    )
    try:
        signature = _b64decode(raw_signature)
    except ValueError:
        signature = b""
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError(
            f"{SIGNATURE_HEADER} is not the base64 of a 64-byte Ed25519 signature",
            code="SIGNATURE_MALFORMED",
        )
    # The header's own text is signed (not a re-rendered integer).
    message = signed_message(raw_timestamp, body)
    matched = False
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        matched = True
    if not matched:
        raise SignatureError("the signature does not match the configured public key")
    return timestamp


__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "load_public_key",
    "public_key_text",
    "sign",
    "signed_message",
    "verify",
]
