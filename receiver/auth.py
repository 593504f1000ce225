"""Staff and API-client tokens: made here, shown once, stored only as a hash.

Tokens carry 256 random bits, so a plain SHA-256 is the right hash (a slow KDF
buys nothing against guessing and costs every request); the database lookup by
hash keeps the comparison off the token itself.

Console passwords (``receiver staff passwd NAME``) are chosen by people, so they get a
slow, memory-hard hash: scrypt (RFC 7914) with a random 16-byte salt, its parameters
stored with it (``scrypt$n=32768,r=8,p=1$<salt>$<hash>``, base64) so they can be raised
later without breaking stored hashes; checked with a constant-time compare.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

ROLES = ("viewer", "sender", "admin")
TOKEN_PREFIX = "rcv_"  # noqa: S105 (a prefix, not a secret)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def role_allows(role: str, needed: str) -> bool:
    """True if ``role`` includes ``needed`` (viewer < sender < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
"""About 32 MiB and a few tens of milliseconds per hash."""
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024
_SCRYPT_HASH = re.compile(
    r"scrypt\$n=(?P<n>[0-9]+),r=(?P<r>[0-9]+),p=(?P<p>[0-9]+)\$(?P<salt>[A-Za-z0-9+/=]+)\$(?P<hash>[A-Za-z0-9+/=]+)"
)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * r * n + 2**20, dklen=32
    )


def hash_password(password: str) -> str:
    """The stored form of ``password``: scrypt with a fresh salt and its parameters."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    encode = base64.b64encode
    return (
        f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"
        f"${encode(salt).decode()}${encode(digest).decode()}"
    )


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches ``stored``. With ``stored`` None (no such member, or
    no password set) a dummy hash is checked, so the answer takes as long either way."""
    match = _SCRYPT_HASH.fullmatch(stored or _dummy_hash())
    if match is None or len(password) > PASSWORD_MAX_LENGTH:
        return False
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    if n > 2**20 or r > 32 or p > 16:  # refuse parameters that would exhaust memory
        return False
    digest = _scrypt(password, base64.b64decode(match["salt"]), n, r, p)
    return hmac.compare_digest(digest, base64.b64decode(match["hash"])) and stored is not None
