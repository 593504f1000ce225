"""Vonage webhook signatures: the SMS API's ``sig`` parameter and the Messages API's
signed JWT.

SMS API ("Signing messages", https://developer.vonage.com/en/getting-started/concepts/signing-messages;
the official SDKs: ``vonage_http_client.auth.Auth.sign_params`` 1.5 in Python,
``Vonage\\Client\\Signature`` in PHP, ``SmsSignatureGenerator`` in .NET):

- the signed string is ``&key=value`` for every parameter but ``sig``, keys sorted, with
  ``&`` and ``=`` inside a value replaced by ``_``;
- ``md5hash`` (the dashboard's default, "MD5 hash") is ``md5(string + secret)``; ``md5``,
  ``sha1``, ``sha256`` and ``sha512`` are the HMAC of the string keyed with the secret;
- the digest is hex; Vonage sends HMAC digests in upper case, the SDKs compute lower
  case, so the comparison ignores case (in constant time);
- a signed request carries ``timestamp`` (Unix seconds) and a random ``nonce``, both
  signed; ``timestamp`` must lie within the tolerance either way.

Messages API ("Signed webhooks", https://developer.vonage.com/en/messages/concepts/signed-webhooks):
``Authorization: Bearer <JWT>``, HS256 keyed with the same signature secret (the
dashboard's signature method does not apply: "SHA-256 is always used"); claims ``iat``,
``jti``, ``iss`` ("Vonage"), ``payload_hash`` (SHA-256 of the request body, lower-case
hex in the documented sample), ``api_key`` and optionally ``application_id``. PyJWT
checks the signature; ``iat`` (against the injected clock) and ``payload_hash`` are
checked here, since PyJWT knows neither our clock nor the body.

Every function is pure: parameters, headers, body, secrets and clock in; a result or a
``SignatureError`` out, whose ``code`` names the failed check (never the expected value).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, get_args

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from receiver.core.signatures.freshness import check_window, parse_timestamp
from receiver.core.timestamps import from_unix
from receiver.errors import SignatureError

SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]
SIGNATURE_METHODS: tuple[str, ...] = get_args(SignatureMethod)
DEFAULT_SIGNATURE_METHOD: SignatureMethod = "md5hash"

# Hex digits each method produces: a mismatch is the usual sign that the dashboard's
# "signature method" and ours differ, and saying so saves an afternoon.
DIGEST_HEX_LENGTH: dict[str, int] = {
    "md5hash": 32,
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha512": 128,
}

_HEX = re.compile(r"[0-9a-fA-F]+")
_MAX_SIG_LENGTH = 256
_JWT_ALGORITHM = "HS256"


# --- SMS API: the ``sig`` parameter ------------------------------------------------------------


def signing_string(params: Mapping[str, str]) -> str:
    """The string Vonage signs: ``&k=v`` for each parameter but ``sig``, keys sorted,
    ``&`` and ``=`` in values replaced by ``_``."""
    return "".join(
        f"&{key}={params[key].replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )


def sms_signature(params: Mapping[str, str], secret: str, method: SignatureMethod) -> str:
    """The ``sig`` value for ``params`` as Vonage sends it: upper-case hex for the HMAC
    methods, lower-case for ``md5hash``."""
    signed = signing_string(params).encode()
    if method == "md5hash":
        # Vonage's legacy "MD5 hash": the secret appended, no HMAC.
        return hashlib.md5(signed + secret.encode()).hexdigest()  # noqa: S324
    if method not in DIGEST_HEX_LENGTH:
        raise ValueError(f"signature method must be one of {', '.join(SIGNATURE_METHODS)}")
    return hmac.new(secret.encode(), signed, method).hexdigest().upper()


def verify_sms(
    params: Mapping[str, str],
    secrets: Sequence[str],
    method: SignatureMethod,
    *,
    now: float,
    tolerance_seconds: int,
) -> int:
    """Check an SMS API webhook's ``sig``; return its signed ``timestamp``.

    ``params`` are the request's parameters (query, form or JSON object) with ``sig``.
    """
    offered = params.get("sig", "")
    if not offered:
        raise SignatureError("the sig parameter is required", code="SIGNATURE_MISSING")
    if len(offered) > _MAX_SIG_LENGTH or not _HEX.fullmatch(offered):
        raise SignatureError("the sig parameter is not a hex digest", code="SIGNATURE_MALFORMED")
    expected_length = DIGEST_HEX_LENGTH[method]
    if len(offered) != expected_length:
        methods = [m for m, n in DIGEST_HEX_LENGTH.items() if n == len(offered)]
        hint = f" (as {' or '.join(methods)} would)" if methods else ""
        raise SignatureError(
            f"sig has {len(offered)} hex digits{hint}, signature_method {method!r} makes "
            f"{expected_length}: set signature_method to the dashboard's signature method"
        )
    raw_timestamp = params.get("timestamp", "")
    try:
        timestamp = parse_timestamp(raw_timestamp)
    except ValueError as exc:
        raise SignatureError(f"the timestamp parameter {exc}", code="SIGNATURE_MALFORMED") from None
    candidate = offered.lower().encode("ascii")
    matched = False
    for secret in secrets:
        expected = sms_signature(params, secret, method).lower().encode("ascii")
        # Keep comparing after a match: time must not depend on which secret matched.
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("sig matches no configured signature secret")
    check_window(
        timestamp, now=now, tolerance_seconds=tolerance_seconds, name="the timestamp parameter"
    )
    return timestamp


# --- Messages API: the signed JWT ----------------------------------------------------------------


def payload_hash(body: bytes) -> str:
    """The ``payload_hash`` claim for ``body``: lower-case hex SHA-256."""
    return hashlib.sha256(body).hexdigest()


@contextmanager
def _short_keys_allowed() -> Iterator[None]:
    # PyJWT warns (InsecureKeyLengthWarning) about HMAC keys under 32 bytes. The secret
    # is Vonage's to choose, not ours: a warning on every webhook would only be noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        yield


def messages_token(
    body: bytes,
    secret: str,
    *,
    issued_at: int,
    jti: str,
    api_key: str,
    application_id: str | None = None,
) -> str:
    """A Messages API webhook token for ``body``, as Vonage signs it."""
    claims: dict[str, Any] = {
        "iat": issued_at,
        "jti": jti,
        "iss": "Vonage",
        "payload_hash": payload_hash(body),
        "api_key": api_key,
    }
    if application_id is not None:
        claims["application_id"] = application_id
    with _short_keys_allowed():
        return jwt.encode(claims, secret, algorithm=_JWT_ALGORITHM)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The ``Authorization: Bearer`` token; None when there is no Authorization at all."""
    value = headers.get("authorization")
    if value is None or not value.strip():
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("Authorization must be 'Bearer <token>'", code="SIGNATURE_MALFORMED")
    return token.strip()


def _decode(token: str, secrets: Sequence[str]) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise SignatureError("the bearer token is not a JWT", code="SIGNATURE_MALFORMED") from None
    if header.get("alg") != _JWT_ALGORITHM:
        raise SignatureError(f"the token must be signed with {_JWT_ALGORITHM}")
    with _short_keys_allowed():
        for secret in secrets:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    secret,
                    algorithms=[_JWT_ALGORITHM],
                    # Time claims are checked against the injected clock, not PyJWT's.
                    options={
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                raise SignatureError(
                    "the bearer token is malformed", code="SIGNATURE_MALFORMED"
                ) from None
            return claims
    raise SignatureError("the token's signature matches no configured signature secret")


def _body_hashes(body: bytes) -> list[str]:
    """Hashes ``payload_hash`` may hold for ``body``: of the raw bytes and, if the body is
    JSON laid out differently, of its compact form (what Vonage's own sample verifier
    hashes: ``sha256(JSON.stringify(body))``). Both forms carry the same content."""
    hashes = [payload_hash(body)]
    try:
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        return hashes
    if compact != body:
        hashes.append(payload_hash(compact))
    return hashes


def verify_messages(
    body: bytes,
    token: str,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int,
) -> dict[str, Any]:
    """Check a Messages API webhook token over ``body``; return its claims."""
    claims = _decode(token, secrets)
    try:
        issued_at = from_unix(claims.get("iat")).timestamp()
    except ValueError as exc:
        raise SignatureError(f"the token's iat claim {exc}", code="SIGNATURE_MALFORMED") from None
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str) or not claimed:
        raise SignatureError("the token has no payload_hash claim", code="SIGNATURE_MALFORMED")
    check_window(issued_at, now=now, tolerance_seconds=tolerance_seconds, name="the token's iat")
    offered = claimed.lower().encode("utf-8")
    matched = False
    for candidate in _body_hashes(body):
        matched |= hmac.compare_digest(candidate.encode("ascii"), offered)
    if not matched:
        raise SignatureError("the body does not match the token's payload_hash")
    return claims
