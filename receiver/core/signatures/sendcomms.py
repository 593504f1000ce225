"""SendComms webhook signatures (``X-SendComms-Signature: sha256=<hex>``).

SendComms signs every webhook it sends to a customer with a secret, where one is
configured (registering a webhook always sets one: the customer's, or a generated
``whsec_<48 hex>`` shown once):

    X-SendComms-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>

The key is the secret string's UTF-8 bytes exactly as written (a ``whsec_`` secret is
not decoded). Sources: the docs' "Verifying Webhooks" section
(https://docs.sendcomms.com/docs/api/email/webhooks) and the server that signs,
``angeloasante/sendcomms-main`` ``lib/api-helpers.ts`` ``sendWebhook`` (commit 74c3dee),
which signs the exact body string it posts. The docs' example re-serializes the parsed
JSON instead; that only matches byte for byte by luck, so we verify the raw body.

Nothing with a timestamp or nonce is in a header: a captured webhook can be replayed.
The body's own ``timestamp`` is signed, but it is not used as a freshness check
(``receiver.providers.sendcomms`` says why); a replay carries a report whose event id
is already in the processed set, so it changes nothing. Every malformed header is a
``SignatureError``, never a ``ValueError``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from receiver.errors import SignatureError

SIGNATURE_HEADER = "x-sendcomms-signature"
PREFIX = "sha256="
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def signature(secret: str, body: bytes) -> str:
    """The ``X-SendComms-Signature`` value of ``body`` signed with ``secret``."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Check a webhook's signature over the raw body; ``headers`` keys are lower case.

    Every secret of a rotation is tried. Raises SignatureError with a code naming the
    failed check.
    """
    raw = headers.get(SIGNATURE_HEADER, "").strip()
    if not raw:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is required", code="SIGNATURE_MISSING")
    scheme, _, digest = raw.partition("=")
    if scheme.lower() != PREFIX[:-1] or not _HEX_DIGEST.fullmatch(digest):
        raise SignatureError(
            f"{SIGNATURE_HEADER} must be sha256= and 64 hex digits", code="SIGNATURE_MALFORMED"
        )
    offered = bytes.fromhex(digest)
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        # Keep comparing after a match: time must not depend on which secret matched.
        matched |= hmac.compare_digest(expected, offered)
    if not matched:
        raise SignatureError("the signature matches no configured secret")
