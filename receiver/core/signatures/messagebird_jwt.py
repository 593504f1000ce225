"""MessageBird request signatures: the ``MessageBird-Signature-JWT`` header.

MessageBird ("Verify HTTP requests", developers.messagebird.com/docs/verify-http-requests,
and the official SDKs' ``RequestValidator``) signs every webhook request with a JWT in the
``MessageBird-Signature-JWT`` header, HMAC-signed (HS256, HS384 or HS512) with the account's
*signing key* (not the API key). Its claims:

- ``iss``: always ``"MessageBird"``;
- ``nbf``, ``exp``: the token's validity window (MessageBird issues 60 s tokens);
- ``jti``: a unique token id (the SDKs do not check it; our dedup makes replays harmless);
- ``url_hash``: hex SHA-256 of the full URL called, scheme, host, port, path and raw query
  exactly as sent (so the query parameters of a GET status report are covered);
- ``payload_hash``: hex SHA-256 of the raw body, present if and only if there is a body.

Unlike the SDK's validator, the clock and tolerance are injected (``leeway`` is the
provider's ``tolerance_seconds``), every key of a rotation is tried, and every malformed
token becomes a ``SignatureError`` with a code naming the failed check. The token is
verified with PyJWT's JWS layer restricted to the HMAC algorithms, so ``alg: none`` and
asymmetric algorithms are refused before any key is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.exceptions import (
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)

from receiver.core.timestamps import from_unix
from receiver.errors import SignatureError

HEADER = "messagebird-signature-jwt"
"""The header's name, lower case (as ``InboundRequest.headers`` holds it)."""
ISSUER = "MessageBird"
ALGORITHMS = ("HS256", "HS384", "HS512")
TOKEN_LIFETIME_SECONDS = 60
_MAX_TOKEN_LENGTH = 8192


class _ProviderChosenKeyHMAC(HMACAlgorithm):
    """HMAC without PyJWT's short-key warning: the key length is MessageBird's choice
    (its SDKs' examples use 32-character keys, shorter than HS384/HS512 digests), so a
    warning on every request would be noise the operator cannot act on."""

    def check_key_length(self, key: bytes) -> str | None:
        return None


def _jws() -> PyJWS:
    jws = PyJWS(algorithms=[])
    jws.register_algorithm("HS256", _ProviderChosenKeyHMAC(HMACAlgorithm.SHA256))
    jws.register_algorithm("HS384", _ProviderChosenKeyHMAC(HMACAlgorithm.SHA384))
    jws.register_algorithm("HS512", _ProviderChosenKeyHMAC(HMACAlgorithm.SHA512))
    return jws


_JWS = _jws()


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified claims that matter after verification."""

    issuer: str
    not_before: float
    expires: float
    token_id: str | None


def check_key(key: str) -> None:
    """ValueError unless ``key`` can be an HMAC signing key (non-empty, not a PEM/SSH key)."""
    if not key:
        raise ValueError("must not be empty")
    if key != key.strip():
        raise ValueError("must not start or end with whitespace")
    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
    except InvalidKeyError as exc:
        raise ValueError(str(exc)) from None


def url_hash(url: str) -> str:
    """The ``url_hash`` claim of a URL: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def payload_hash(body: bytes) -> str:
    """The ``payload_hash`` claim of a body: hex SHA-256 of the raw bytes."""
    return hashlib.sha256(body).hexdigest()


def sign(
    key: str,
    *,
    url: str,
    body: bytes,
    now: float,
    lifetime_seconds: int = TOKEN_LIFETIME_SECONDS,
    algorithm: str = "HS256",
    token_id: str | None = None,
) -> str:
    """A ``MessageBird-Signature-JWT`` value for a request, as MessageBird makes it."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "jti": token_id or str(uuid.uuid4()),
        "url_hash": url_hash(url),
    }
    if body:
        claims["payload_hash"] = payload_hash(body)
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return _JWS.encode(payload, key, algorithm=algorithm)


def _hash_matches(expected: str, claimed: object) -> bool:
    if not isinstance(claimed, str):
        return False
    # Bytes, not str: compare_digest refuses non-ASCII strings with a TypeError.
    return hmac.compare_digest(expected.encode(), claimed.lower().encode("utf-8", "replace"))


def _decode(token: str, keys: Sequence[str]) -> dict[str, Any]:
    """The token's claims if its signature verifies with one of ``keys``."""
    for key in keys:
        try:
            decoded = _JWS.decode_complete(token, key, algorithms=list(ALGORITHMS))
        except InvalidSignatureError:
            continue
        except InvalidAlgorithmError:
            raise SignatureError(
                f"the token's algorithm is not one of {', '.join(ALGORITHMS)}",
                code="SIGNATURE_INVALID",
            ) from None
        except PyJWTError:
            raise SignatureError(
                "MessageBird-Signature-JWT is not a well-formed JWT", code="SIGNATURE_MALFORMED"
            ) from None
        try:
            claims = json.loads(decoded["payload"])
        except (ValueError, RecursionError):
            claims = None
        if not isinstance(claims, dict):
            raise SignatureError(
                "the token's payload is not a JSON object", code="SIGNATURE_MALFORMED"
            )
        return claims
    raise SignatureError("the token is not signed with a configured signing key")


def _time_claim(claims: dict[str, Any], name: str) -> float:
    try:
        return from_unix(claims.get(name)).timestamp()
    except ValueError as exc:
        message = f"the token's {name} claim {exc}"
        raise SignatureError(message, code="SIGNATURE_MALFORMED") from None


def verify(
    token: str,
    *,
    url: str,
    body: bytes,
    keys: Sequence[str],
    now: float,
    tolerance_seconds: int,
) -> Claims:
    """Check a ``MessageBird-Signature-JWT`` for a request to ``url`` carrying ``body``.

    Order as in the SDKs: signature, issuer, validity window (``nbf``/``exp``, each
    widened by ``tolerance_seconds``), ``url_hash``, then ``payload_hash``. Raises
    SignatureError whose code says which check failed.
    """
    token = token.strip()
    if not token:
        raise SignatureError("MessageBird-Signature-JWT is required", code="SIGNATURE_MISSING")
    if len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
        raise SignatureError(
            "MessageBird-Signature-JWT is not a well-formed JWT", code="SIGNATURE_MALFORMED"
        )
    claims = _decode(token, keys)
    if claims.get("iss") != ISSUER:
        raise SignatureError(f"the token's issuer is not {ISSUER!r}")
    not_before = _time_claim(claims, "nbf")
    expires = _time_claim(claims, "exp")
    if not_before > now + tolerance_seconds:
        raise SignatureError(
            f"the token is not valid yet (nbf more than {tolerance_seconds} s ahead)",
            code="TIMESTAMP_FUTURE",
        )
    if expires <= now - tolerance_seconds:
        raise SignatureError(
            f"the token expired more than {tolerance_seconds} s ago", code="TIMESTAMP_STALE"
        )
    if "url_hash" not in claims:
        raise SignatureError("the token has no url_hash claim", code="SIGNATURE_MALFORMED")
    if not _hash_matches(url_hash(url), claims["url_hash"]):
        raise SignatureError("the token's url_hash does not match the public URL of the request")
    claimed_payload_hash = claims.get("payload_hash")
    if body and not claimed_payload_hash:
        raise SignatureError("the request has a body but the token has no payload_hash")
    if not body and claimed_payload_hash:
        raise SignatureError("the token has a payload_hash but the request has no body")
    if body and not _hash_matches(payload_hash(body), claimed_payload_hash):
        raise SignatureError("the token's payload_hash does not match the body")
    token_id = claims.get("jti")
    return Claims(
        issuer=ISSUER,
        not_before=not_before,
        expires=expires,
        token_id=token_id if isinstance(token_id, str) else None,
    )


__all__ = [
    "ALGORITHMS",
    "HEADER",
    "ISSUER",
    "TOKEN_LIFETIME_SECONDS",
    "Claims",
    "check_key",
    "payload_hash",
    "sign",
    "url_hash",
    "verify",
]
