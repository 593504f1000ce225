"""The Idempotency-Key header and the request fingerprint, as
draft-ietf-httpapi-idempotency-key-header-07 describes them. Sans-IO.

The draft makes the key a Structured Field String (``Idempotency-Key: "8e03978e"``);
the bare form most clients send (``Idempotency-Key: 8e03978e``) means the same key.
The fingerprint tells "the same request again" from "another request with a reused
key": a SHA-256 over the method, the path and the canonical JSON of the validated
body (sorted keys, no whitespace), so formatting and key order do not matter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from receiver.errors import BadRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_QUOTED = re.compile(r'"((?:[^"\\]|\\["\\])*)"')
_ESCAPE = re.compile(r'\\(["\\])')
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
"""A key as sent on the wire (HTTP drops the spaces around a field value), for the
OpenAPI document: 1-255 printable ASCII characters."""


def parse_key(value: str) -> str:
    """The key an ``Idempotency-Key`` header carries (quoted or bare); BadRequest unless
    it is 1-255 printable ASCII characters."""
    value = value.strip()
    if quoted := _QUOTED.fullmatch(value):
        value = _ESCAPE.sub(r"\1", quoted[1])
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not _PRINTABLE_ASCII.fullmatch(value):
        raise BadRequest(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters",
            code="IDEMPOTENCY_KEY_INVALID",
            field=HEADER,
        )
    return value


def fingerprint(method: str, path: str, body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the request as far as idempotency is concerned."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{canonical}".encode()).hexdigest()
