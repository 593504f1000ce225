"""receiver: SMS delivery-report webhooks, verified, deduplicated and durably stored."""

__version__ = "0.1.0"
