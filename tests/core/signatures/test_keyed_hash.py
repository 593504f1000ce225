"""``hmac_digest``: the HMAC of its parts joined, whatever their sizes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from receiver.core.signatures.keyed_hash import hmac_digest


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4095, 100_000])
def test_hmac_digest_is_the_hmac_of_the_parts_joined(size: int) -> None:
    key = b"k" * 24
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert hmac_digest(key, b"msg_1.1700000000.", body) == hmac.digest(
        key, b"msg_1.1700000000." + body, "sha256"
    )
    assert hmac_digest(key, body, digest=hashlib.sha1) == hmac.digest(key, body, "sha1")
    assert hmac_digest(b"other", body) != hmac_digest(key, body)
