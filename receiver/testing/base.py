"""What every request builder returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignedRequest:
    """A ready-to-send webhook request: ``path`` includes any query string."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
