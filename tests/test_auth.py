"""Tokens and console passwords (receiver/auth.py)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from receiver.auth import hash_password, verify_password

PASSWORD = "correct horse battery staple"


def test_a_password_verifies_against_its_hash_only() -> None:
    stored = hash_password(PASSWORD)
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt_and_names_its_parameters() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    scheme, params, salt, digest = first.split("$")
    assert (scheme, params) == ("scrypt", "n=32768,r=8,p=1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32


def test_stored_parameters_are_used() -> None:
    """A hash made with other (older, cheaper) parameters still verifies."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    stored = "scrypt$n=16384,r=8,p=1$" + "$".join(encoded)
    assert verify_password(PASSWORD, stored)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "plain text",
        "sha256$abc$def",
        "scrypt$n=16384,r=8,p=1$not base64!$AAAA",
        "scrypt$n=4194304,r=8,p=1$AAAA$AAAA",  # would need 4 GiB
    ],
)
def test_no_or_malformed_hash_never_verifies(stored: str | None) -> None:
    assert not verify_password(PASSWORD, stored)


def test_an_absurdly_long_password_is_refused_without_hashing() -> None:
    assert not verify_password("x" * 5000, hash_password(PASSWORD))
