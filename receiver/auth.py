"""Staff and API-client tokens: made here, shown once, stored only as a hash.

Tokens carry 256 random bits, so a plain SHA-256 is the right hash (a slow KDF
buys nothing against guessing and costs every request); the database lookup by
hash keeps the comparison off the token itself.
"""

from __future__ import annotations

import hashlib
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
