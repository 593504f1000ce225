"""What every request builder returns."""

from __future__ import annotations

from receiver.providers.base import WebhookRequest

SignedRequest = WebhookRequest
"""A ready-to-send webhook request (the name the builders' users know)."""

__all__ = ["SignedRequest"]
