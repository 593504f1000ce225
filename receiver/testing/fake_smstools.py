"""A fake Smstools for tests: a real HTTP server on loopback that speaks the SMS Gateway
API's ``POST /v1/message/send`` and posts ``delivery_report`` webhooks back.

    with FakeSmstools(webhook_url=receiver_url + "/webhooks/smstools?token=" + token) as fake:
        fake.on_send(Drop(), Fail(500, record=True), Busy())  # the next three misbehave
        # configure a ``smstools`` provider with fake.config_keys() and send through it
        fake.wait_for_sends(3)
        fake.report_all("0", "1")  # a 'submitted' and a 'delivered' webhook per message

It behaves as Smstools documents (docs/providers/smstools.md): ``X-Client-Id`` and
``X-Client-Secret`` or a 400 with error 104; a JSON body ``{"message", "to", "sender",
"reference"}`` answered ``{"messageid": "..."}``; errors as ``{"error": "...",
"errorMsg": "..."}``. Like Smstools it has no idempotency and no lookup: a repeated send
is a second message. It counts the send calls per reference (``sends_of``) and keeps
every message it really took (``messages``), so a test can tell a retry from a message
sent twice.

Faults (``on_send`` for the next calls, ``on_message`` for the first call carrying a
given text): ``Drop`` takes the message and closes the connection unanswered;
``Fail(status, record=True)`` takes it, then answers 5xx; ``Fail(status)`` answers 5xx
without taking it; ``Busy`` answers Smstools' error 105 ("issues with our servers,
try again later") without taking it; ``Reject`` refuses it with an error code;
``Stall`` takes it and holds the answer. Smstools documents no 429, so ``Throttle`` is
answered as ``Busy``.
"""

from __future__ import annotations

import secrets
import string
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
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
from receiver.testing.smstools import EXAMPLE_TIMEZONE, smstools_report

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Busy:
    """Answer 400 with Smstools' error 105 (its servers have issues); take nothing."""


@dataclass(frozen=True)
class FakeSmstoolsMessage:
    """A message the fake took (it would send it to the handset)."""

    messageid: str
    reference: str | None
    to: str
    message: str
    sender: str | None
    taken_at: datetime


class FakeSmstools(FakeServer):
    """The fake; ``start()`` (or ``with``) serves it on ``base_url``. ``webhook_url`` is
    the URL set for webhooks in the Smstools account (with its ``?token=``)."""

    def __init__(
        self,
        *,
        client_id: str = "436621713682841522298",
        client_secret: str = "fake-smstools-client-secret",  # noqa: S107 - a test credential
        webhook_url: str | None = None,
        timezone: str = EXAMPLE_TIMEZONE,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_url = webhook_url
        self.timezone = timezone
        self._messages: dict[str, FakeSmstoolsMessage] = {}
        self._calls: Counter[str | None] = Counter()  # send calls by reference
        self._reported: set[str] = set()
        self._by_text: dict[str, Behaviour | Busy] = {}

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {
            "api_base_url": self.base_url,
            "client_id": self.client_id,
            "api_key": self.client_secret,
        }

    def on_message(self, text: str, behaviour: Behaviour | Busy) -> None:
        """How to treat the first send call whose message text is ``text`` (whatever
        order the calls come in); later calls with it are treated normally."""
        with self.lock:
            self._by_text[text] = behaviour

    # ------------------------------------------------------------------ observing

    @property
    def messages(self) -> list[FakeSmstoolsMessage]:
        """Every message taken, in order: what really went out to handsets."""
        with self.lock:
            return list(self._messages.values())

    def sends_of(self, reference: str) -> int:
        """How many send calls named ``reference``, whatever the fake answered."""
        with self.lock:
            return self._calls[reference]

    def wait_for_sends(self, count: int, timeout: float = 20.0) -> None:
        """Block until at least ``count`` send calls arrived; TimeoutError otherwise."""
        self.wait_until(lambda: self._calls.total() >= count, f"{count} send calls", timeout)

    # ------------------------------------------------------------------ webhooks

    def report(
        self,
        message: FakeSmstoolsMessage,
        delivery_code: str,
        *,
        detail: str | None = None,
        detail_description: str | None = None,
        status_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The ``delivery_report`` event Smstools would post for ``message``."""
        return smstools_report(
            message.messageid,
            delivery_code,
            reference=message.reference,
            receiver=message.to,
            sender=message.sender or "",
            content=message.message,
            sent_at=message.taken_at,
            status_at=status_at,
            timezone=self.timezone,
            detail=detail,
            detail_description=detail_description,
        )

    def post(self, events: list[dict[str, Any]]) -> httpx.Response:
        """POST ``events`` as one webhook request (a JSON array) to ``webhook_url``."""
        if self.webhook_url is None:
            raise RuntimeError("set webhook_url: where this Smstools account posts webhooks")
        return httpx.post(self.webhook_url, json=events, timeout=30)

    def report_all(self, *codes: str, batch: int = 10) -> list[httpx.Response]:
        """For every message taken and not reported yet, one event per delivery code in
        ``codes`` (e.g. ``"0", "1"``: submitted, then delivered), ``batch`` events per
        request; the answers, in order."""
        with self.lock:
            fresh = [m for m in self._messages.values() if m.messageid not in self._reported]
            self._reported.update(m.messageid for m in fresh)
        events = [self.report(message, code) for code in codes for message in fresh]
        return [self.post(events[i : i + batch]) for i in range(0, len(events), batch)]

    # ------------------------------------------------------------------ answering

    async def answer(self, request: FakeRequest) -> Answer | None:
        if (
            request.headers.get("x-client-id") != self.client_id
            or request.headers.get("x-client-secret") != self.client_secret
        ):
            return 400, {}, {"error": "104", "errorMsg": "Invalid credentials"}
        if request.method != "POST" or request.path != "/v1/message/send":
            return 404, {}, {"error": "Not found"}
        try:
            payload = request.json()
        except ValueError:
            return 400, {}, {"error": "error parsing json"}
        if not isinstance(payload, dict):
            return 400, {}, {"error": "114", "errorMsg": "Empty Request"}
        return await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> Answer | None:
        reference = payload.get("reference")
        with self.lock:
            behaviour: Behaviour | Busy | None = self._by_text.pop(
                str(payload.get("message")), None
            )
            if behaviour is None:  # ``Throttle`` in ``on_send`` stands for ``Busy``
                behaviour = self.next_behaviour("send")
            self._calls[reference] += 1
            self.lock.notify_all()
            if isinstance(behaviour, Busy | Throttle):
                return 400, {}, _error("105", "We are currently having issues with our servers")
            if isinstance(behaviour, Reject):
                return behaviour.status, {}, _error(behaviour.code, behaviour.message)
            if isinstance(behaviour, Fail) and not behaviour.record:
                return behaviour.status, {}, {"error": "Internal Server Error"}
            refused = _refusal(payload)
            if refused is not None:
                return 400, {}, refused
            message = self._take(payload)
        if isinstance(behaviour, Fail):
            return behaviour.status, {}, {"error": "Internal Server Error"}
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        return 200, {}, {"messageid": message.messageid}

    def _take(self, payload: dict[str, Any]) -> FakeSmstoolsMessage:
        """Take a message (no idempotency: every call is a new one). Lock held."""
        messageid = "".join(secrets.choice(_ID_ALPHABET) for _ in range(30))
        message = FakeSmstoolsMessage(
            messageid=messageid,
            reference=payload.get("reference"),
            to=str(payload["to"]),
            message=str(payload["message"]),
            sender=payload.get("sender"),
            taken_at=datetime.now(UTC),
        )
        self._messages[messageid] = message
        return message


def _error(code: str, text: str) -> dict[str, str]:
    return {"error": code, "errorMsg": text}


def _refusal(payload: dict[str, Any]) -> dict[str, str] | None:
    """The error Smstools answers for a send it cannot take ("Handling errors")."""
    if not payload.get("message"):
        return _error("112", "Message Required")
    to = payload.get("to")
    if not isinstance(to, str) or not to.lstrip("+").isdigit():
        return _error("103", "Phone number is required or invalid")
    if not payload.get("sender"):
        return _error("109", "Sender name cannot be empty")
    reference = payload.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 255):
        return _error("139", "Missing or invalid parameters provided: reference")
    return None


__all__ = [
    "Busy",
    "Drop",
    "Fail",
    "FakeSmstools",
    "FakeSmstoolsMessage",
    "Reject",
    "Stall",
]
