"""HTTP Basic authentication (RFC 7617) for providers that sign nothing.

Secrets are ``"user:password"`` strings; every one is compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence

from receiver.errors import SignatureError


def check_credential(credential: str) -> None:
    """ValueError unless ``credential`` is a usable ``user:password`` pair."""
    user, colon, password = credential.partition(":")
    if not (colon and user and password):
        raise ValueError("must be 'user:password' (HTTP Basic credentials)")
    if not credential.isprintable():
        raise ValueError("must not contain control characters")


def verify(headers: Mapping[str, str], credentials: Sequence[str]) -> None:
    """Raise SignatureError unless ``Authorization: Basic`` holds one of ``credentials``."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise SignatureError(
            "Authorization: Basic credentials are required", code="SIGNATURE_MISSING"
        )
    try:
        offered = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII byte in the header
        raise SignatureError(
            "the Basic credentials are not base64", code="SIGNATURE_MALFORMED"
        ) from None
    matched = False
    for credential in credentials:
        matched |= hmac.compare_digest(offered, credential.encode())
    if not matched:
        raise SignatureError("the Basic credentials do not match")


def header(credential: str) -> str:
    """The ``Authorization`` value for a ``"user:password"`` credential."""
    return "Basic " + base64.b64encode(credential.encode()).decode("ascii")
