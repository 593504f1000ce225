"""A secret token in the callback URL, for providers whose reports carry no signature.

FutureSMS, RelayOS and Smstools document no signature on their delivery reports, so
the URL we give them for reports carries a secret: ``/webhooks/NAME?token=SECRET``
(the ``url_token`` of the provider's config, README "Beyond the contract"). It is compared in
constant time. A token proves less than a signature (it travels with every request
and sits in the provider's settings), so ``allowed_ips`` is worth adding where the
provider publishes its addresses.

The token never reaches storage: the stored copy of a request has it replaced by
``REDACTED`` (``redact``), and ``receiver replay --resign`` puts the configured one
back (``restore``).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, quote

from receiver.errors import SignatureError

PARAMETER = "token"
REDACTED = "REDACTED"


def verify(query_string: bytes, expected: str) -> None:
    """Raise SignatureError unless the query carries ``token=expected`` exactly once."""
    query = query_string.decode("latin-1")
    given = [value for name, value in parse_qsl(query, keep_blank_values=True) if name == PARAMETER]
    if not given:
        raise SignatureError(
            f"the {PARAMETER!r} query parameter is missing", code="SIGNATURE_MISSING"
        )
    if len(given) > 1:
        raise SignatureError(
            f"the {PARAMETER!r} query parameter is given more than once",
            code="SIGNATURE_MALFORMED",
        )
    if not hmac.compare_digest(given[0].encode(), expected.encode()):
        raise SignatureError(f"the {PARAMETER!r} query parameter is not the configured url_token")


def _rewrite(target: str, value: str) -> str:
    path, mark, query = target.partition("?")
    if not mark:
        return target
    pairs = [
        f"{PARAMETER}={value}" if part.split("=", 1)[0] == PARAMETER else part
        for part in query.split("&")
    ]
    return f"{path}?{'&'.join(pairs)}"


def redact(target: str) -> str:
    """A request target (path and query) with every token value replaced by REDACTED."""
    return _rewrite(target, REDACTED)


def restore(target: str, token: str) -> str:
    """A redacted (or stale) request target carrying ``token`` again."""
    return _rewrite(target, quote(token, safe=""))


def with_token(url: str, token: str | None) -> str:
    """``url`` with ``token=...`` appended (unchanged when ``token`` is None)."""
    if token is None:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{PARAMETER}={quote(token, safe='')}"
