"""Sending: the ``POST /v1/messages`` API and the outbox worker that hands messages to
the providers' APIs (rate-limited, retrying, reconciling)."""
