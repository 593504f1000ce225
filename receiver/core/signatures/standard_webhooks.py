"""Standard Webhooks v1 signatures (https://www.standardwebhooks.com/, spec section
"Verifying webhook authenticity").

``webhook-signature`` holds space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the secret's bytes
(``whsec_<base64>``). Unlike the reference implementation, the clock and tolerance are
injected, every secret of a rotation is tried, and every malformed header becomes the
same ``SignatureError`` (never a ``ValueError``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from receiver.core.signatures.freshness import check_timestamp
from receiver.core.signatures.keyed_hash import hmac_digest
from receiver.errors import SignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
_MAX_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The verified ``webhook-id`` and ``webhook-timestamp`` (Unix seconds)."""

    msg_id: str
    timestamp: int


def new_whsec() -> str:
    """A fresh secret: ``whsec_`` and the base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; ValueError if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX!r}")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("is not valid base64 after the whsec_ prefix") from exc
    if len(key) < 16:
        raise ValueError("must hold at least 16 bytes of key material")
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac_digest(key, f"{msg_id}.{timestamp}.".encode(), body)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    return "v1," + base64.b64encode(_digest(key, msg_id, timestamp, body)).decode("ascii")


def _offered_signatures(header: str) -> list[bytes]:
    offered = []
    for entry in header.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    return offered


def verify(
    body: bytes,
    headers: Mapping[str, str],
    keys: Sequence[bytes],
    *,
    now: float,
    tolerance_seconds: int,
) -> SignedHeaders:
    """Check a request's Standard Webhooks signature; ``headers`` keys are lower case.

    Raises SignatureError with a code naming the failed check.
    """
    msg_id = headers.get("webhook-id", "")
    raw_timestamp = headers.get("webhook-timestamp", "")
    raw_signature = headers.get("webhook-signature", "")
    if not (msg_id and raw_timestamp and raw_signature):
        raise SignatureError(
            "webhook-id, webhook-timestamp and webhook-signature are all required",
            code="SIGNATURE_MISSING",
        )
    if len(msg_id) > _MAX_ID_LENGTH or not msg_id.isprintable():
        raise SignatureError("webhook-id is malformed", code="SIGNATURE_MALFORMED")
    timestamp = check_timestamp(
        "webhook-timestamp", raw_timestamp, now=now, tolerance_seconds=tolerance_seconds
    )
    offered = _offered_signatures(raw_signature)
    if not offered:
        raise SignatureError(
            "webhook-signature holds no well-formed v1 signature", code="SIGNATURE_MALFORMED"
        )
    matched = False
    for key in keys:
        expected = _digest(key, msg_id, timestamp, body)
        for candidate in offered:
            # Keep comparing after a match: time must not depend on which one matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches a configured secret")
    return SignedHeaders(msg_id=msg_id, timestamp=timestamp)
