"""Twilio webhook signatures (``X-Twilio-Signature``).

Followed: https://www.twilio.com/docs/usage/webhooks/webhooks-security and the
official SDK's ``twilio.request_validator`` (twilio 9.13), which is the reference
implementation Twilio tells everyone to use:

- the signed string is the full URL Twilio called (scheme, host, path, the query
  exactly as sent), then, for a form body, every POST parameter name immediately
  followed by its value, names sorted, a repeated name's distinct values sorted;
- the signature is base64 HMAC-SHA1 of that string keyed with the account Auth Token
  (or, when the request carries ``X-Twilio-Webhooks-Signature-Settings`` naming
  ``algorithm=HMAC_SHA256``, HMAC-SHA256 keyed with a SharedKey secret, public beta);
- Twilio signs the URL sometimes with and sometimes without the port, so the URL is
  tried without any port and with its port (the scheme's default when none is
  written), exactly as the SDK does;
- a JSON body is not a parameter: Twilio puts ``bodySHA256`` (hex SHA-256 of the raw
  body) in the query, signs the URL alone, and the body must match that hash.

Nothing here does I/O; every malformed header becomes a ``SignatureError``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from receiver.core.signatures.keyed_hash import hmac_digest
from receiver.errors import SignatureError

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
BODY_HASH_PARAM = "bodySHA256"
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"

_HASHES: dict[str, Callable[..., Any]] = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}
_DIGEST_SIZES = {HMAC_SHA1: 20, HMAC_SHA256: 32}
_DEFAULT_PORTS = {"https": 443, "http": 80}


def signed_string(url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The string Twilio signs: ``url`` + name + value for each sorted parameter."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    # Distinct values only, as the SDKs do (Python and Node both go through a set).
    return url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def signature(
    secret: str,
    url: str,
    params: Iterable[tuple[str, str]] = (),
    *,
    algorithm: str = HMAC_SHA1,
) -> str:
    """The base64 ``X-Twilio-Signature`` of a request to ``url`` with form ``params``."""
    if algorithm not in _HASHES:
        raise ValueError(f"algorithm must be {HMAC_SHA1} or {HMAC_SHA256}")
    digest = hmac.new(
        secret.encode(), signed_string(url, params).encode(), _HASHES[algorithm]
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sha256(body: bytes) -> str:
    """The ``bodySHA256`` query value for a JSON body: lower-case hex SHA-256."""
    return hashlib.sha256(body).hexdigest()


def url_variants(url: str) -> list[str]:
    """The URLs to try: without any port, and with its port (the scheme's default
    when none is written), as ``remove_port``/``add_port`` of the twilio SDK's
    validator; then ``url`` exactly as given."""
    parts = urlsplit(url)
    variants = []
    try:
        port = parts.port
    except ValueError:
        port = None  # an unparsable port: only the URL as it stands can match
    else:
        host = parts.netloc.rpartition("@")[2]
        userinfo = parts.netloc[: len(parts.netloc) - len(host)]
        if port is not None:
            bare_host = host.rsplit(":", 1)[0]
            variants += [urlunsplit(parts._replace(netloc=userinfo + bare_host)), url]
        elif (default := _DEFAULT_PORTS.get(parts.scheme.lower())) is not None:
            variants += [
                urlunsplit(parts._replace(netloc=userinfo + host)),
                urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{default}")),
            ]
    variants.append(url)
    return list(dict.fromkeys(variants))


@functools.lru_cache(maxsize=256)  # called with the same few URLs for every request
def _url_variants(url: str) -> tuple[str, ...]:
    return tuple(url_variants(url))


def algorithm_from_settings(header: str) -> str:
    """The algorithm named by ``X-Twilio-Webhooks-Signature-Settings``
    (``key=<SharedKey id>,algorithm=<name>``); HMAC_SHA1 when none is named."""
    for part in header.split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "algorithm" and value.strip():
            algorithm = value.strip().upper()
            if algorithm not in _HASHES:
                raise SignatureError(
                    f"{SETTINGS_HEADER} names an unsupported algorithm",
                    code="SIGNATURE_MALFORMED",
                )
            return algorithm
    return HMAC_SHA1


def _offered(header: str, algorithm: str) -> bytes:
    try:
        offered = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise SignatureError(
            f"{SIGNATURE_HEADER} is not base64", code="SIGNATURE_MALFORMED"
        ) from None
    if len(offered) != _DIGEST_SIZES[algorithm]:
        raise SignatureError(
            f"{SIGNATURE_HEADER} is not an {algorithm} digest", code="SIGNATURE_MALFORMED"
        )
    return offered


def _check_body_hash(url: str, body: bytes) -> None:
    query = urlsplit(url).query
    offered = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == BODY_HASH_PARAM]
    if not offered or not offered[0]:
        raise SignatureError(
            f"a JSON body needs the {BODY_HASH_PARAM} query parameter",
            code="SIGNATURE_MISSING",
        )
    expected = body_sha256(body).encode()
    if not hmac.compare_digest(expected, offered[0].lower().encode("utf-8", "replace")):
        raise SignatureError(f"the body does not match {BODY_HASH_PARAM}")


def verify(
    url: str,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    params: Sequence[tuple[str, str]] = (),
    json_body: bytes | None = None,
) -> str:
    """Check a Twilio request; ``headers`` keys are lower case.

    ``params`` are the form body's parameters (not the query's: those are in ``url``).
    For a JSON body pass ``json_body`` (raw bytes) and no params. Returns the secret
    that matched; raises SignatureError with a code naming the failed check.
    """
    header = headers.get(SIGNATURE_HEADER, "")
    if not header.strip():
        raise SignatureError(f"{SIGNATURE_HEADER} is required", code="SIGNATURE_MISSING")
    algorithm = algorithm_from_settings(headers.get(SETTINGS_HEADER, ""))
    offered = _offered(header, algorithm)
    signed_params: Sequence[tuple[str, str]] = () if json_body is not None else params
    # The parameters' part is the same for every URL and secret: join it once.
    signed_tail = signed_string("", signed_params).encode()
    candidates = [candidate.encode() + signed_tail for candidate in _url_variants(url)]
    matched: str | None = None
    for secret in secrets:
        key = secret.encode()
        for signed in candidates:
            expected = hmac_digest(key, signed, digest=_HASHES[algorithm])
            # No early exit: the time taken must not tell which secret or URL matched.
            if hmac.compare_digest(expected, offered) and matched is None:
                matched = secret
    if matched is None:
        raise SignatureError("no signature matches a configured secret and the public URL")
    if json_body is not None:
        _check_body_hash(url, json_body)
    return matched


__all__ = [
    "BODY_HASH_PARAM",
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SETTINGS_HEADER",
    "SIGNATURE_HEADER",
    "algorithm_from_settings",
    "body_sha256",
    "signature",
    "signed_string",
    "url_variants",
    "verify",
]
