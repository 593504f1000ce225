"""A change-feed subscriber for integration tests: a real HTTP server on loopback that
verifies our Standard Webhooks signature and records what arrived.

    with TestSubscriber() as subscriber:
        # [subscribers.orders] in the config: subscriber.config_keys()
        subscriber.on_send(Fail(500), Drop(), Throttle("1"))  # the next three misbehave
        subscriber.wait_for_changes(10)
        assert [c["seq"] for c in subscriber.changes_of(message_id)] == [1, 2, 3]

Every request whose signature does not verify is answered 401 and kept in
``rejected`` (a test asserts it stays empty). A verified request gets the next scripted
behaviour (``Fail``, ``Drop``, ``Throttle``, ``Stall``, ``Reject(410)`` for Gone), or
else 200. ``attempts`` holds every verified request; ``acknowledged`` those answered
2xx, in arrival order; ``changes_of`` a message's changes as a consumer that drops a
repeated ``webhook-id`` sees them. The server machinery is
``receiver.testing.fake_server``'s (one request per connection).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from receiver.core.signatures import standard_webhooks
from receiver.errors import SignatureError
from receiver.testing.fake_server import (
    Answer,
    Drop,
    Fail,
    FakeRequest,
    FakeServer,
    Reject,
    Stall,
    Throttle,
)

TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class ReceivedChange:
    """One verified delivery: its Standard Webhooks id and timestamp, the body's
    ``data``, and the request as it came (to check it with other verifiers)."""

    webhook_id: str
    timestamp: int
    data: dict[str, Any]
    headers: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> str:
        return str(self.data["message"]["id"])


class TestSubscriber(FakeServer):
    """The subscriber; ``start()`` (or ``with``) serves it on ``base_url``."""

    __test__ = False  # not a pytest test class

    def __init__(self, secret: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.secret = secret or standard_webhooks.new_whsec()
        self._key = standard_webhooks.decode_secret(self.secret)
        self.attempts: list[ReceivedChange] = []
        self.acknowledged: list[ReceivedChange] = []
        self.rejected: list[FakeRequest] = []

    def config_keys(self, path: str = "/changes") -> dict[str, Any]:
        """The ``[subscribers.NAME]`` keys that point at this server."""
        return {"url": self.base_url + path, "secrets": [self.secret]}

    async def answer(self, request: FakeRequest) -> Answer | None:
        try:
            signed = standard_webhooks.verify(
                request.body,
                request.headers,
                [self._key],
                now=time.time(),
                tolerance_seconds=TOLERANCE_SECONDS,
            )
            received = ReceivedChange(
                signed.msg_id,
                signed.timestamp,
                json.loads(request.body)["data"],
                request.headers,
                request.body,
            )
        except (SignatureError, ValueError, KeyError, TypeError):
            with self.lock:
                self.rejected.append(request)
                self.lock.notify_all()
            return 401, {}, {"error": "signature"}
        with self.lock:
            self.attempts.append(received)
            behaviour = self.next_behaviour("send")
            self.lock.notify_all()
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        elif isinstance(behaviour, Drop):
            return None
        elif isinstance(behaviour, Throttle):
            return 429, {"retry-after": behaviour.retry_after}, {}
        elif isinstance(behaviour, Fail | Reject):
            return behaviour.status, {}, {}
        with self.lock:
            self.acknowledged.append(received)
            self.lock.notify_all()
        return 200, {}, {}

    def distinct(self) -> list[ReceivedChange]:
        """The acknowledged changes, each ``webhook-id`` once (its first arrival)."""
        with self.lock:
            seen: set[str] = set()
            first = []
            for change in self.acknowledged:
                if change.webhook_id not in seen:
                    seen.add(change.webhook_id)
                    first.append(change)
            return first

    def changes_of(self, message_id: str) -> list[dict[str, Any]]:
        """The ``data`` of the message's changes, in arrival order, repeats dropped."""
        return [c.data for c in self.distinct() if c.message_id == message_id]

    def by_message(self) -> dict[str, list[dict[str, Any]]]:
        """Every message's changes as ``changes_of`` gives them."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for change in self.distinct():
            grouped.setdefault(change.message_id, []).append(change.data)
        return grouped

    def wait_for_changes(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` distinct changes were acknowledged."""
        self.wait_until(
            lambda: len({c.webhook_id for c in self.acknowledged}) >= count,
            f"{count} changes at the subscriber",
            timeout,
        )


__all__ = ["ReceivedChange", "TestSubscriber"]
