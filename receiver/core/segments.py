"""How many SMS segments a text takes, and in which encoding (3GPP TS 23.038, 23.040).

Theory of operation
-------------------
A text that uses only the GSM 7-bit default alphabet and its extension table is sent
as GSM-7: 160 septets in one SMS; an extension character (``€``, ``[``, ...) is an
escape plus a septet, so it counts 2. Anything else is sent as UCS-2 (in practice
UTF-16): 70 code units in one SMS, and a character outside the Basic Multilingual
Plane (most emoji) takes 2. A longer text is split into concatenated segments whose
6-octet header leaves 153 septets or 67 code units each, and an escape pair or a
surrogate pair is never split between two segments, so the count packs characters
greedily rather than dividing the total.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

MAX_SEGMENTS = 10
"""The longest text we accept; beyond it, handsets and providers start to refuse."""

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The default alphabet: 128 positions less the escape (0x1B)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The extension table: each is sent as escape + septet."""

# (units in a lone SMS, units per segment of a concatenated one)
_CAPACITY: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True, slots=True)
class Segmentation:
    encoding: Encoding
    units: int
    """GSM-7 septets or UTF-16 code units."""
    segments: int


def count_segments(text: str) -> Segmentation:
    """The encoding ``text`` is sent in and how many segments it takes."""
    encoding: Encoding
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        encoding, costs = "GSM-7", [2 if char in GSM7_EXTENSION else 1 for char in text]
    else:
        encoding, costs = "UCS-2", [2 if ord(char) > 0xFFFF else 1 for char in text]
    units = sum(costs)
    single, per_segment = _CAPACITY[encoding]
    segments = 1 if units <= single else _packed(costs, per_segment)
    return Segmentation(encoding, units, segments)


def _packed(costs: Iterable[int], capacity: int) -> int:
    """Segments of ``capacity`` units needed, no character split between two."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments
