"""Plivo callback signatures, V3 and V2.

Plivo signs every callback with HMAC-SHA256 keyed with the (sub)account's Auth Token and
sends the base64 digest in a header, with a nonce in another.

V3 (``X-Plivo-Signature-V3`` or ``X-Plivo-Signature-Ma-V3``, nonce in
``X-Plivo-Signature-V3-Nonce``) signs ``{url}.{nonce}`` where ``url`` is rebuilt the way
the official SDKs do (plivo-python 4.63 ``plivo.utils.signature_v3.construct_get_url`` /
``construct_post_url``; plivo-go ``GenerateUrl``; plivo-java ``generateUrl``):

* ``scheme://host/path`` of the URL Plivo called (query and fragment dropped);
* the URL's query parameters, percent-decoded (``+`` is a space), sorted by key and, for
  a repeated key, by value, written ``k=v`` joined with ``&``, after a ``?``;
* for a POST with form parameters: a ``.`` (only if there was a query), then the form
  parameters sorted the same way and written ``kv`` with nothing between them (a POST
  without a query still gets the ``?``).

So ``POST https://h/p?b=2&a=1`` with form ``Z=1&A=2`` signs ``https://h/p?a=1&b=2.A2Z1``.
The header may hold several comma-separated signatures; one match is enough.

V2 (``X-Plivo-Signature-V2`` or ``X-Plivo-Signature-Ma-V2``, nonce in
``X-Plivo-Signature-V2-Nonce``) signs ``scheme://host/path`` + nonce, nothing else
(https://www.plivo.com/docs/messaging/concepts/signature-validation). It covers neither the
query nor the body: anyone who captured one V2-signed request to this URL can attach its
headers to any payload. ``verify`` accepts it only when asked to (``accept_v2``).

The ``-Ma-`` headers are signed with the main account's token, the others with the token of
the (sub)account that sent the message; every configured token is tried against every
offered signature. Neither version signs a timestamp, so there is no freshness check:
replays are made harmless by the processed set, not here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal
from urllib.parse import parse_qsl, urlparse, urlunparse

from receiver.errors import SignatureError

V3_SIGNATURE_HEADERS = ("x-plivo-signature-v3", "x-plivo-signature-ma-v3")
V3_NONCE_HEADER = "x-plivo-signature-v3-nonce"
V2_SIGNATURE_HEADERS = ("x-plivo-signature-v2", "x-plivo-signature-ma-v2")
V2_NONCE_HEADER = "x-plivo-signature-v2-nonce"

Version = Literal["v3", "v2"]
_MAX_NONCE_LENGTH = 256
_DIGEST_SIZE = hashlib.sha256().digest_size


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


def _sorted_query(params: dict[str, list[str]]) -> str:
    return "&".join(f"{key}={value}" for key in sorted(params) for value in sorted(params[key]))


def _sorted_params(params: dict[str, list[str]]) -> str:
    return "".join(f"{key}{value}" for key in sorted(params) for value in sorted(params[key]))


def split_url(url: str) -> tuple[str, str]:
    """``scheme://host/path`` and the raw query of ``url``."""
    try:
        parts = urlparse(url)
    except ValueError:
        raise SignatureError("the public URL cannot be parsed") from None
    return urlunparse((parts.scheme, parts.netloc, parts.path, "", "", "")), parts.query


def query_pairs(query: str) -> list[tuple[str, str]]:
    """A raw query string's parameters as the SDKs read them: percent-decoded, ``+`` is a
    space, blank values kept."""
    return parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")


def v3_signed_url(method: str, url: str, form_params: Sequence[tuple[str, str]] = ()) -> str:
    """The URL string V3 signs (before ``.{nonce}``) for a request to ``url``."""
    base, raw_query = split_url(url)
    query = _sorted_query(_grouped(query_pairs(raw_query)))
    if method.upper() == "GET" or not form_params:
        return f"{base}?{query}" if query else base
    separator = "." if query else ""
    return f"{base}?{query}{separator}{_sorted_params(_grouped(form_params))}"


def _digest(token: str, message: str) -> bytes:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).digest()


def sign_v3(
    token: str, method: str, url: str, nonce: str, form_params: Sequence[tuple[str, str]] = ()
) -> str:
    """The base64 ``X-Plivo-Signature-V3`` of a request."""
    message = f"{v3_signed_url(method, url, form_params)}.{nonce}"
    return base64.b64encode(_digest(token, message)).decode("ascii")


def sign_v2(token: str, url: str, nonce: str) -> str:
    """The base64 ``X-Plivo-Signature-V2`` of a request to ``url`` (query not covered)."""
    base, _ = split_url(url)
    return base64.b64encode(_digest(token, base + nonce)).decode("ascii")


def _offered(headers: Mapping[str, str], names: Sequence[str]) -> list[bytes]:
    """Every well-formed signature in the named headers (each may be a comma list)."""
    offered = []
    for name in names:
        for entry in headers.get(name, "").split(","):
            try:
                digest = base64.b64decode(entry.strip(), validate=True)
            except (binascii.Error, ValueError):  # ValueError: non-ASCII text
                continue
            if len(digest) == _DIGEST_SIZE:
                offered.append(digest)
    return offered


def _nonce(headers: Mapping[str, str], name: str) -> str:
    nonce = headers.get(name, "")
    if not nonce:
        raise SignatureError(f"{name} is required", code="SIGNATURE_MISSING")
    if len(nonce) > _MAX_NONCE_LENGTH or not nonce.isprintable():
        raise SignatureError(f"{name} is malformed", code="SIGNATURE_MALFORMED")
    return nonce


def _present(headers: Mapping[str, str], names: Sequence[str]) -> bool:
    return any(headers.get(name, "") for name in names)


def verify(
    headers: Mapping[str, str],
    *,
    method: str,
    url: str,
    form_params: Sequence[tuple[str, str]],
    tokens: Sequence[str],
    accept_v2: bool = True,
) -> Version:
    """Check a Plivo callback's signature; ``headers`` keys are lower case.

    V3 is checked when its header is present (a failing V3 never falls back to V2);
    otherwise V2 if ``accept_v2``. Returns the version that verified; raises
    SignatureError with a code naming the failed check.
    """
    if _present(headers, V3_SIGNATURE_HEADERS):
        version: Version = "v3"
        names, nonce = V3_SIGNATURE_HEADERS, _nonce(headers, V3_NONCE_HEADER)
    elif _present(headers, V2_SIGNATURE_HEADERS) and accept_v2:
        version = "v2"
        names, nonce = V2_SIGNATURE_HEADERS, _nonce(headers, V2_NONCE_HEADER)
    elif _present(headers, V2_SIGNATURE_HEADERS):
        raise SignatureError(
            "X-Plivo-Signature-V3 is required: V2 signatures are refused for this provider",
            code="SIGNATURE_MISSING",
        )
    else:
        raise SignatureError(
            "X-Plivo-Signature-V3 (or V2) and its nonce header are required",
            code="SIGNATURE_MISSING",
        )
    offered = _offered(headers, names)
    if not offered:
        raise SignatureError(
            f"{names[0]} holds no well-formed base64 HMAC-SHA256", code="SIGNATURE_MALFORMED"
        )
    if version == "v3":
        message = f"{v3_signed_url(method, url, form_params)}.{nonce}"
    else:
        message = split_url(url)[0] + nonce
    matched = False
    for token in tokens:
        expected = _digest(token, message)
        for candidate in offered:
            # Keep comparing after a match: time must not depend on which one matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError(f"no {version.upper()} signature matches a configured auth token")
    return version


__all__ = [
    "V2_NONCE_HEADER",
    "V2_SIGNATURE_HEADERS",
    "V3_NONCE_HEADER",
    "V3_SIGNATURE_HEADERS",
    "query_pairs",
    "sign_v2",
    "sign_v3",
    "split_url",
    "v3_signed_url",
    "verify",
]
