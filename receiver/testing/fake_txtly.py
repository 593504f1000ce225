"""A fake Txtly SMS API: a real HTTP server on loopback that behaves as Txtly documents
(docs/providers/txtly.md), faults included.

    with FakeTxtly() as txtly:
        txtly.fault(message_id, Drop())  # the first send under that key: taken, no answer
        # configure a ``txtly`` provider with txtly.config_keys() and send through it
        assert len(txtly.messages_for(message_id)) == 1

What it does as Txtly says:

- ``Authorization: Bearer tx_...`` ("Authentication"): otherwise 401
  ``authentication_error``. Only ``POST /v1/sms``; other routes are 404 ``not_found``.
- ``POST /v1/sms`` takes ``to`` (E.164), ``body`` (1-1600 characters) and ``senderId``
  (one of ``sender_ids``); a bad field is 400 ``validation_error`` with ``errors``, an
  unknown sender 422 ``unprocessable_entity``. The answer is the SMS as in the docs'
  example (``id``, ``status: "sent"``, ``providerMessageId``, ...). Txtly does not
  show the success status code; the fake answers 200.
- ``Idempotency-Key``: "If a message with the same key exists, the existing message is
  returned", whatever the body, for ``key_lifetime`` (24 h); after that the key counts
  as new. ``age_keys()`` moves the fake's idempotency clock forward to show it.
- Every answer carries ``X-RateLimit-Limit`` (``limit`` requests per second),
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (a Unix time). Past the limit,
  or while a window is used up, it answers 429 ``rate_limit_exceeded`` with
  ``Retry-After`` seconds, and counts that 429 (``window_refusals``).

Faults, per idempotency key (``fault``) or for the next sends (``on_send``): ``Drop``
(taken, then the connection closes), ``Fail(500, record=True)`` (taken, then 500
``internal_error``), ``Fail(500)`` (500, nothing taken), ``Throttle("2")`` (429 with
``Retry-After: 2``; the window stays used up that long), ``Reject`` (its status with
Txtly's error body, ``code`` as ``name``), ``Stall`` (taken, the answer held) and
``Exhaust`` (taken and answered, with ``X-RateLimit-Remaining: 0``: the window is used
up until its reset).

``in_flight_grace``: this many requests arriving after the answer that used a window up
are served rather than refused: a client with N requests in flight can have sent N - 1
of them before it could read that answer. Txtly would refuse them too, so the default
is 0. A test of the client's own pacing sets it to the client's concurrency less one, so
that only requests sent *after* the client knew count as refused, however late a loaded
machine delivers the earlier ones.

``report()`` posts an ``sms.*`` webhook event for one of its messages, signed with the
webhook's signing secret, in the shape the ``txtly`` parser reads (Txtly documents no
SMS event; see docs/providers/txtly.md).
"""

from __future__ import annotations

import itertools
import math
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from receiver.core.segments import count_segments
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
from receiver.testing.txtly import txtly_event, txtly_request

EXAMPLE_API_KEY = "tx_live_abc123xyz789def456ghi789jkl012mno345"  # the docs' example key
EXAMPLE_SENDER_ID = "d290f1ee-6c54-4b01-90e6-d701748f0851"  # the docs' example sender
KEY_LIFETIME = timedelta(hours=24)
MAX_BODY = 1600
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class Exhaust:
    """Take the message and answer it, saying the rate window is used up
    (``X-RateLimit-Remaining: 0``) until a reset at least ``seconds`` away."""

    seconds: float = 2.0


Fault = Behaviour | Exhaust


@dataclass(frozen=True)
class FakeSms:
    """An SMS the fake accepted: what really went out to a handset."""

    id: str
    idempotency_key: str | None
    to: str
    body: str
    sender_id: str
    created_at: str


@dataclass(frozen=True)
class SendCall:
    """One ``POST /v1/sms`` the fake received, and how it answered."""

    idempotency_key: str | None
    at: float
    """``time.time()`` on arrival."""
    status: int | None
    """The answer's status; None when the connection was dropped."""
    window_refusal: bool = False
    """A 429 because the rate window was used up (not a scripted ``Throttle``)."""


class FakeTxtly(FakeServer):
    """The fake Txtly API; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(
        self,
        api_key: str = EXAMPLE_API_KEY,
        sender_ids: tuple[str, ...] = (EXAMPLE_SENDER_ID,),
        *,
        limit: int = 100,
        key_lifetime: timedelta = KEY_LIFETIME,
        in_flight_grace: int = 0,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.sender_ids = sender_ids
        self.limit = limit
        self.key_lifetime = key_lifetime
        self.in_flight_grace = in_flight_grace
        self._messages: list[FakeSms] = []
        self._by_key: dict[str, tuple[FakeSms, float]] = {}  # key -> (sms, stored at)
        self._calls: list[SendCall] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._aged = 0.0
        self._window = (0, 0)  # (the second it counts, requests in it)
        self._used_up: float | None = None  # until when the window is used up (Unix time)
        self._graced = 0  # requests served within in_flight_grace since it was used up
        self._provider_ids = itertools.count(1)

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {
            "api_base_url": self.base_url,
            "api_key": self.api_key,
            "sender": self.sender_ids[0],
        }

    # ------------------------------------------------------------------ scripting

    def fault(self, key: str, *faults: Fault) -> None:
        """How to treat the next sends under Idempotency-Key ``key``, one fault each."""
        with self.lock:
            self._faults.setdefault(key, deque()).extend(faults)

    def age_keys(self, by: timedelta) -> None:
        """Move the idempotency clock forward: every stored key is ``by`` older."""
        with self.lock:
            self._aged += by.total_seconds()

    def accept(self, key: str, to: str, body: str) -> FakeSms:
        """Take a message as if it had been sent (by a worker that then died)."""
        with self.lock:
            return self._store(key, {"to": to, "body": body, "senderId": self.sender_ids[0]})

    # ------------------------------------------------------------------ observing

    @property
    def messages(self) -> list[FakeSms]:
        """Every SMS accepted, in order."""
        with self.lock:
            return list(self._messages)

    def message(self, key: str) -> FakeSms:
        """The latest SMS accepted under Idempotency-Key ``key``; KeyError if none."""
        for sms in reversed(self.messages):
            if sms.idempotency_key == key:
                return sms
        raise KeyError(key)

    def messages_for(self, key: str) -> list[FakeSms]:
        """The SMS accepted under Idempotency-Key ``key`` (more than one only when the
        key expired in between)."""
        return [sms for sms in self.messages if sms.idempotency_key == key]

    @property
    def send_calls(self) -> list[SendCall]:
        with self.lock:
            return list(self._calls)

    def sends_of(self, key: str) -> int:
        """How many send calls carried Idempotency-Key ``key``."""
        return sum(call.idempotency_key == key for call in self.send_calls)

    @property
    def window_refusals(self) -> int:
        """429s earned by a request sent while the rate window was used up."""
        return sum(call.window_refusal for call in self.send_calls)

    def report(
        self,
        key: str,
        status: str,
        *,
        receiver_url: str,
        secret: str | None,
        provider: str = "default",
        url_token: str | None = None,
        event_id: str | None = None,
    ) -> httpx.Response:
        """Post an ``sms.{status}`` event for the SMS sent under ``key`` to
        ``receiver_url``/webhooks/``provider``, signed with ``secret`` if given."""
        sms = self.message(key)
        event = txtly_event(sms.id, status, event_id=event_id, to=sms.to)
        request = txtly_request(secret, event, provider=provider, url_token=url_token)
        return httpx.post(
            receiver_url.rstrip("/") + request.path, content=request.body, headers=request.headers
        )

    # ------------------------------------------------------------------ answering

    async def answer(self, request: FakeRequest) -> Answer | None:
        now = time.time()
        with self.lock:
            answer, fault = self._answer(request, now)
        if isinstance(fault, Stall) and answer is not None and answer[0] == 200:
            await self.stall(fault)
        return answer

    def _answer(self, request: FakeRequest, now: float) -> tuple[Answer | None, Fault | None]:
        """The answer and the fault it played; called with the lock held."""
        sending = request.path == "/v1/sms" and request.method == "POST"
        key = request.headers.get("idempotency-key") if sending else None
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            if sending:
                self._record(SendCall(key, now, 401))
            return _error(401, "authentication_error", "Missing or invalid API key", {}), None
        refused = self._over_the_limit(now)
        if refused is not None:
            if sending:
                self._record(SendCall(key, now, 429, window_refusal=True))
            return refused, None
        if not sending:
            message = "The requested resource was not found."
            return _error(404, "not_found", message, self._rate_headers(now)), None
        queued = self._faults.get(key or "")
        fault: Fault | None = queued.popleft() if queued else self.next_behaviour("send")
        answer = self._answer_send(request, key, fault, now)
        self._record(SendCall(key, now, None if answer is None else answer[0]))
        return answer, fault

    def _record(self, call: SendCall) -> None:
        self._calls.append(call)
        self.lock.notify_all()

    def _over_the_limit(self, now: float) -> Answer | None:
        """Count the request in its one-second window; a 429 if the window is used up
        (and the request is not within the grace). Called with the lock held."""
        second = int(now)
        if self._window[0] != second:
            self._window = (second, 0)
        if self._used_up is not None and now >= self._used_up:
            self._used_up = None
        if self._used_up is not None:
            if self._graced >= self.in_flight_grace:
                return self._throttled(now)
            self._graced += 1
        self._window = (second, self._window[1] + 1)
        if self._window[1] >= self.limit and self._used_up is None:
            self._use_up(second + 1.0)  # this answer says: none left
        return None

    def _use_up(self, until: float) -> None:
        """The window is used up until ``until``; the grace starts over."""
        self._used_up = until
        self._graced = 0

    def _throttled(self, now: float) -> Answer:
        until = self._used_up if self._used_up is not None else now
        retry_after = str(max(1, math.ceil(until - now)))
        headers = {**self._rate_headers(now), "retry-after": retry_after}
        message = "You have exceeded the rate limit. Please try again later."
        return _error(429, "rate_limit_exceeded", message, headers)

    def _rate_headers(self, now: float) -> dict[str, str]:
        second, used = self._window
        if self._used_up is not None and now < self._used_up:
            remaining, reset = 0, math.ceil(self._used_up)
        else:
            remaining, reset = max(0, self.limit - used), second + 1
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
        }

    def _answer_send(
        self, request: FakeRequest, key: str | None, fault: Fault | None, now: float
    ) -> Answer | None:
        if isinstance(fault, Throttle):
            self._use_up(now + float(fault.retry_after))
            return self._throttled(now)
        if isinstance(fault, Reject):
            return _error(fault.status, fault.code, fault.message, self._rate_headers(now))
        if isinstance(fault, Fail) and not fault.record:
            return _error(fault.status, "internal_error", _INTERNAL, self._rate_headers(now))
        try:
            payload = request.json()
        except ValueError:
            payload = None
        problem = _invalid(payload)
        if problem is not None:
            field, text = problem
            errors = {field: [text]}
            headers = self._rate_headers(now)
            return _error(400, "validation_error", "Validation failed", headers, errors=errors)
        assert isinstance(payload, dict)
        if payload["senderId"] not in self.sender_ids:
            text = "The sender identity does not exist or is not active"
            return _error(422, "unprocessable_entity", text, self._rate_headers(now))
        sms = self._existing(key) or self._store(key, payload)
        if isinstance(fault, Exhaust):
            # X-RateLimit-Reset is whole seconds: the window ends at one.
            self._use_up(float(math.ceil(now + fault.seconds)))
        headers = self._rate_headers(now)
        if isinstance(fault, Fail):
            return _error(fault.status, "internal_error", _INTERNAL, headers)
        if isinstance(fault, Drop):
            return None
        return 200, headers, self._listed(sms)

    def _existing(self, key: str | None) -> FakeSms | None:
        if key is None or key not in self._by_key:
            return None
        sms, stored_at = self._by_key[key]
        if self._key_clock() - stored_at >= self.key_lifetime.total_seconds():
            return None  # "After 24 hours, the idempotency key expires"
        return sms

    def _key_clock(self) -> float:
        return time.monotonic() + self._aged

    def _store(self, key: str | None, payload: dict[str, Any]) -> FakeSms:
        sms = FakeSms(
            id=str(uuid.uuid4()),
            idempotency_key=key,
            to=payload["to"],
            body=payload["body"],
            sender_id=payload["senderId"],
            created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
        self._messages.append(sms)
        if key is not None:
            self._by_key[key] = (sms, self._key_clock())
        return sms

    def _listed(self, sms: FakeSms) -> dict[str, Any]:
        """The SMS as Txtly's example answer shows it."""
        return {
            "id": sms.id,
            "to": sms.to,
            "body": sms.body,
            "messageType": "transactional",
            "status": "sent",
            "segments": count_segments(sms.body).segments,
            "zone": "Zone2",
            "bundleCovered": True,
            "billableCents": 0,
            "providerMessageId": f"sns-msg-{next(self._provider_ids):06d}",
            "senderId": sms.sender_id,
            "senderName": "Fake Sender",
            "createdAt": sms.created_at,
            "sentAt": sms.created_at,
        }


_INTERNAL = "An internal server error occurred. Our team has been notified."


def _invalid(payload: Any) -> tuple[str, str] | None:
    """The first field of a send body that Txtly would refuse: (field, problem)."""
    if not isinstance(payload, dict):
        return "body", "The request body must be a JSON object"
    to, body, sender = payload.get("to"), payload.get("body"), payload.get("senderId")
    if not isinstance(to, str) or not _E164.fullmatch(to):
        return "to", "Recipient phone number in E.164 format is required"
    if not isinstance(body, str) or not 1 <= len(body) <= MAX_BODY:
        return "body", f"Message text of 1-{MAX_BODY} characters is required"
    if not isinstance(sender, str):
        return "senderId", "Sender identity id is required"
    if payload.get("messageType", "transactional") not in ("transactional", "promotional"):
        return "messageType", 'Must be "transactional" or "promotional"'
    return None


def _error(
    status: int,
    name: str,
    message: str,
    headers: dict[str, str],
    *,
    errors: dict[str, list[str]] | None = None,
) -> Answer:
    """Txtly's error body: ``{status_code, name, message[, errors]}`` ("Errors")."""
    body: dict[str, Any] = {"status_code": status, "name": name, "message": message}
    if errors is not None:
        body["errors"] = errors
    return status, headers, body


__all__ = [
    "EXAMPLE_API_KEY",
    "EXAMPLE_SENDER_ID",
    "Drop",
    "Exhaust",
    "Fail",
    "FakeSms",
    "FakeTxtly",
    "Fault",
    "Reject",
    "SendCall",
    "Stall",
    "Throttle",
]
