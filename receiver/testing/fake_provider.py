"""A fake SMS provider for tests: a real HTTP server on loopback that speaks the
``standard`` send API (README "Sending") and can be told how to misbehave.

    with FakeProvider() as provider:
        provider.on_send(Stall(2.0), Drop())  # the next two sends misbehave, then all is well
        # configure a ``standard`` provider with provider.config_keys() and send through it
        provider.wait_for_sends(3)
        assert provider.sends_of(message_id) == 3 and len(provider.messages) == 1

It behaves like a careful real provider: it checks ``Authorization: Bearer``, honours
``Idempotency-Key`` (the same key always gets the same message, a different request under
a used key gets 422), and answers ``GET /messages?reference=...`` from what it accepted.
It counts every send call (``send_calls``) and every message it really accepted
(``messages``), so a test can tell "retried" from "sent twice". ``report()`` posts a
correctly signed Standard Webhooks delivery report for one of its messages, as the real
provider would.

The server machinery and the fault scripts are ``receiver.testing.fake_server``'s.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import httpx

from receiver.testing.fake_server import (
    Answer,
    Behaviour,
    Drop,
    Fail,
    FakeRequest,
    FakeServer,
    Reject,
    Stall,
    Throttle,
)
from receiver.testing.standard import standard_report, standard_request


@dataclass(frozen=True)
class FakeMessage:
    """A message the fake provider accepted (it would send it to the handset)."""

    id: str
    reference: str | None
    to: str
    body: str
    sender: str | None
    idempotency_key: str | None


@dataclass(frozen=True)
class SendCall:
    """One ``POST /messages`` the fake provider received, whatever it answered."""

    reference: str | None
    idempotency_key: str | None
    at: float
    """``time.monotonic()`` on arrival."""


class FakeProvider(FakeServer):
    """The fake ``standard`` provider; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(self, api_key: str = "fake-provider-key", port: int = 0) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.lookup_calls = 0
        self._messages: dict[str, FakeMessage] = {}
        self._by_key: dict[str, tuple[FakeMessage, bytes]] = {}
        self._send_calls: list[SendCall] = []
        self._ids = itertools.count(1)

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {"api_base_url": self.base_url, "api_key": self.api_key}

    # ------------------------------------------------------------------ observing

    def accept(self, reference: str, to: str, body: str) -> FakeMessage:
        """Take a message as if it had been sent before (by a worker that then died)."""
        with self.lock:
            return self._new_message({"reference": reference, "to": to, "body": body}, None)

    @property
    def messages(self) -> list[FakeMessage]:
        """Every message accepted, in order: what really went out to handsets."""
        with self.lock:
            return list(self._messages.values())

    @property
    def send_calls(self) -> list[SendCall]:
        with self.lock:
            return list(self._send_calls)

    def sends_of(self, reference: str) -> int:
        """How many send calls named ``reference``."""
        return sum(call.reference == reference for call in self.send_calls)

    def message(self, reference: str) -> FakeMessage:
        """The message accepted with ``reference``; KeyError if there is none."""
        for message in self.messages:
            if message.reference == reference:
                return message
        raise KeyError(reference)

    def wait_for_sends(self, count: int, timeout: float = 20.0) -> None:
        """Block until at least ``count`` send calls arrived; TimeoutError otherwise."""
        self.wait_until(lambda: len(self._send_calls) >= count, f"{count} send calls", timeout)

    def report(
        self,
        reference: str,
        status: str,
        *,
        receiver_url: str,
        secret: str,
        provider: str = "default",
        error_code: str | None = None,
    ) -> httpx.Response:
        """Post a signed delivery report for the message sent with ``reference`` to
        ``receiver_url``/webhooks/``provider`` (Standard Webhooks, with ``secret``)."""
        message = self.message(reference)
        data = standard_report(message.id, status, to=message.to, error_code=error_code)
        request = standard_request(secret, data, provider=provider)
        return httpx.post(
            receiver_url.rstrip("/") + request.path, content=request.body, headers=request.headers
        )

    # ------------------------------------------------------------------ answering

    async def answer(self, request: FakeRequest) -> Answer | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, {"code": "UNAUTHORIZED", "message": "bad API key"}
        if request.path != "/messages" or request.method not in ("GET", "POST"):
            return 404, {}, {"code": "NOT_FOUND", "message": "no such route"}
        if request.method == "GET":
            return await self._lookup(request)
        return await self._send(request)

    async def _send(self, request: FakeRequest) -> Answer | None:
        key = request.headers.get("idempotency-key")
        try:
            payload = request.json()
            reference = payload.get("reference")
        except (ValueError, AttributeError):
            return 400, {}, {"code": "INVALID_REQUEST", "message": "the body is not JSON"}
        with self.lock:
            behaviour = self.next_behaviour("send")
            self._send_calls.append(SendCall(reference, key, time.monotonic()))
            self.lock.notify_all()
            if isinstance(behaviour, Throttle):
                return 429, {"retry-after": behaviour.retry_after}, {"code": "TOO_MANY_REQUESTS"}
            if isinstance(behaviour, Reject):
                return behaviour.status, {}, {"code": behaviour.code, "message": behaviour.message}
            if isinstance(behaviour, Fail) and not behaviour.record:
                return behaviour.status, {}, {"code": "INTERNAL", "message": "provider fault"}
            if not all(isinstance(payload.get(name), str) for name in ("to", "body")):
                return 400, {}, {"code": "INVALID_REQUEST", "message": "to and body are required"}
            taken = self._take(payload, key, request.body)
        if taken is None:
            return 422, {}, {"code": "IDEMPOTENCY_KEY_REUSED", "message": "another request"}
        message, created = taken
        if isinstance(behaviour, Fail):
            return behaviour.status, {}, {"code": "INTERNAL", "message": "provider fault"}
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        return (201 if created else 200), {}, _listed(message)

    def _take(
        self, payload: dict[str, Any], key: str | None, body: bytes
    ) -> tuple[FakeMessage, bool] | None:
        """Accept a message, or find the one its Idempotency-Key already got: (message,
        new); None for another request under a used key. Call with the lock held."""
        if key is not None and key in self._by_key:
            message, first_body = self._by_key[key]
            return (message, False) if first_body == body else None
        message = self._new_message(payload, key)
        if key is not None:
            self._by_key[key] = (message, body)
        return message, True

    def _new_message(self, payload: dict[str, Any], key: str | None) -> FakeMessage:
        message = FakeMessage(
            id=f"fake-{next(self._ids):06d}",
            reference=payload.get("reference"),
            to=payload["to"],
            body=payload["body"],
            sender=payload.get("sender"),
            idempotency_key=key,
        )
        self._messages[message.id] = message
        return message

    async def _lookup(self, request: FakeRequest) -> Answer | None:
        reference = request.param("reference") or ""
        with self.lock:
            behaviour = self.next_behaviour("lookup")
            self.lookup_calls += 1
            found = [_listed(m) for m in self._messages.values() if m.reference == reference]
        if isinstance(behaviour, Throttle):
            return 429, {"retry-after": behaviour.retry_after}, {"code": "TOO_MANY_REQUESTS"}
        if isinstance(behaviour, Fail | Reject):
            return behaviour.status, {}, {"code": "INTERNAL", "message": "lookup fault"}
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        return 200, {}, {"items": found}


def _listed(message: FakeMessage) -> dict[str, Any]:
    return {"id": message.id, "reference": message.reference, "status": "queued"}


__all__ = [
    "Behaviour",
    "Drop",
    "Fail",
    "FakeMessage",
    "FakeProvider",
    "Reject",
    "SendCall",
    "Stall",
    "Throttle",
]
