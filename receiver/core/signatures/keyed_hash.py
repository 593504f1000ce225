"""HMAC without letting go of the GIL: the signature checks run on the event loop.

hashlib keeps the GIL while it hashes less than 2 KiB at once (HASHLIB_GIL_MINSIZE);
OpenSSL's one-shot ``hmac.digest`` lets go of it for any message. Getting it back from
a thread that is running Python (the store's writer) cost the event loop about 100 us
per signature under load (py-spy, bench/ingest.py), against a few us of hashing.
"""

from __future__ import annotations

import hmac
from typing import Any

_HELD_GIL_BYTES = 2047


def hmac_digest(key: bytes, *parts: bytes, digest: Any = "sha256") -> bytes:
    """The HMAC of ``parts`` joined, hashed in pieces under 2 KiB (the GIL held)."""
    mac = hmac.new(key, digestmod=digest)
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _HELD_GIL_BYTES):
            mac.update(view[start : start + _HELD_GIL_BYTES])
    return mac.digest()
