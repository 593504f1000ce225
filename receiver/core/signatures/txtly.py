"""Txtly webhook signatures: the ``txtly-signature`` header (HMAC-SHA256).

Txtly says only: "Every webhook delivery includes a txtly-signature header containing
an HMAC-SHA256 signature. Verify this against your signing secret"
(https://docs.txtly.com.au/api-reference/webhooks); the signing secret is the
``whsec_...`` string that ``POST /v1/webhooks`` answers. What is signed, how it is
encoded and whether a timestamp takes part are on no page we could read. We take the
commonest single-header form, **unverified against a real Txtly delivery**
(docs/providers/txtly.md says why):

- the signed bytes are the raw request body, exactly as received;
- the key is the signing secret as written, ``whsec_`` included, in UTF-8 (as Stripe
  keys its ``whsec_`` secrets; the secret is an opaque string, not base64 we could
  decode with confidence);
- the header holds the hex digest (either case), optionally prefixed ``sha256=``.

Anything else is refused (401): a guess that is wrong must fail closed, never open.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from receiver.errors import SignatureError

HEADER = "txtly-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
MIN_SECRET_CHARACTERS = 16
"""After the prefix: a shorter signing secret is a truncated copy or a placeholder."""
_SECRET = re.compile(rf"{SECRET_PREFIX}[A-Za-z0-9+/=_-]{{{MIN_SECRET_CHARACTERS},}}")
_HEX_DIGEST = re.compile(r"(?:sha256=)?([0-9A-Fa-f]{64})")


def check_secret(secret: str) -> None:
    """ValueError unless ``secret`` looks like a Txtly signing secret (``whsec_...``)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(
            f"must be the webhook's signing_secret, which starts with {SECRET_PREFIX!r}"
        )
    if not _SECRET.fullmatch(secret):
        raise ValueError(
            f"must have at least {MIN_SECRET_CHARACTERS} characters after {SECRET_PREFIX!r},"
            " letters, digits or +/=_- only (no spaces, no '...')"
        )


def _digest(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def signature(secret: str, body: bytes) -> str:
    """The ``txtly-signature`` value of ``body``: the lower-case hex digest."""
    return _digest(secret, body).hex()


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Raise SignatureError unless ``headers`` (lower-case names) carry a signature of
    ``body`` by one of ``secrets``; the code says which check failed."""
    raw = headers.get(HEADER, "").strip()
    if not raw:
        raise SignatureError(f"the {HEADER} header is missing", code="SIGNATURE_MISSING")
    match = _HEX_DIGEST.fullmatch(raw)
    if match is None:
        raise SignatureError(
            f"the {HEADER} header is not a hex HMAC-SHA256 digest", code="SIGNATURE_MALFORMED"
        )
    offered = bytes.fromhex(match[1])
    matched = False
    for secret in secrets:
        # Keep comparing after a match: time must not depend on which secret matched.
        matched |= hmac.compare_digest(_digest(secret, body), offered)
    if not matched:
        raise SignatureError(f"the {HEADER} header matches no configured secret")


__all__ = ["HEADER", "SECRET_PREFIX", "check_secret", "signature", "verify"]
