"""A fake SendComms SMS API for tests: a real HTTP server on loopback that behaves as
SendComms' docs and server code say (``angeloasante/sendcomms-main`` at 74c3dee,
``app/api/v1/sms/send/route.ts``, ``lib/idempotency``, ``lib/rate-limit``), faults
included, and posts signed webhooks back.

    with FakeSendComms(webhook_secret=SECRET) as sendcomms:
        sendcomms.webhook_url = receiver_url + "/webhooks/sendcomms"
        sendcomms.on_send_to("+233540800994", Drop())  # taken, then the answer is lost
        # configure a ``sendcomms`` provider with sendcomms.config_keys() and send
        assert len(sendcomms.messages_of(message_id)) == 1

``POST /api/v1/sms/send``, in the server's order:

1. ``Authorization: Bearer`` (401 ``UNAUTHORIZED``);
2. the rate window (``rate_limit`` per fixed ``window_seconds``): every answer from
   here carries ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (a Unix time); over the
   limit, or a scripted ``Throttle``, is 429 ``RATE_LIMIT_EXCEEDED`` with
   ``retryAfter`` in the body and ``Retry-After``; replays count too;
3. the body (400 ``INVALID_JSON``, ``MISSING_FIELD``, ``INVALID_PHONE_NUMBER``,
   ``MESSAGE_TOO_LONG``, or a scripted ``Reject`` with another code);
4. ``idempotency_key``: a key with a cached success (24 h) is replayed, 200 with
   ``X-Idempotent-Replay: true`` and ``_idempotent`` in the body; a key locked by a
   request in flight waits ``in_progress_wait`` (1 s), then 409 ``REQUEST_IN_PROGRESS``
   unless the answer got cached meanwhile; otherwise the key is locked for
   ``lock_seconds`` (30 s);
5. a scripted ``Reject(402, "INSUFFICIENT_BALANCE")``: 402, and the lock stays;
6. the upstream send (``Stall(s)``: it takes ``s`` seconds while the key stays
   locked, so a retry meanwhile gets 409, and a later one the replay; ``Stall(None)``
   until ``release()``, or ``release_to(number)`` for the sends to one number);
7. failure (``Fail(503)``, ``Reject(400, "SMS_SEND_FAILED")``): an ``sms.failed``
   webhook, 503/400 ``SMS_SEND_FAILED`` with the ``transaction_id``; nothing is cached
   and the lock is *not* released, so a retry within ``lock_seconds`` gets 409 and a
   later one is a new send;
8. success: the message is taken (``messages``), ``sms.sent`` (then, with
   ``delivery_reports``, the documented ``sms.delivered``) is posted to
   ``webhook_url`` concurrently with the answer, and the answer is cached under the key
   and the lock released. ``Drop()`` then closes the connection without answering;
   ``Fail(500, record=True)`` answers 500 *before caching* (the server died after the
   carrier took it: the case no client can detect, see docs/providers/sendcomms.md).

Scripts: ``on_send(...)`` for the next calls whoever they are for, ``on_send_to(number,
...)`` for the next calls to one recipient (these come first).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import secrets
import time
from collections import deque
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
from receiver.testing.sendcomms import (
    sendcomms_event,
    sendcomms_request,
    sendcomms_transaction_id,
)

SEND_PATH = "/api/v1/sms/send"
KEY_LIFETIME_SECONDS = 86400.0
MAX_MESSAGE = 1600
_PHONE = re.compile(r"^\+?[1-9]\d{7,14}$")
# Codes the server answers before it takes the idempotency lock (validation) or after.
_AFTER_LOCK = frozenset({"INSUFFICIENT_BALANCE", "SMS_SEND_FAILED"})


@dataclass(frozen=True)
class SentSms:
    """A message SendComms handed to a carrier: what reached a handset."""

    transaction_id: str
    to: str
    message: str
    sender: str | None
    reference: str | None
    idempotency_key: str | None


@dataclass(frozen=True)
class SendCall:
    """One ``POST /api/v1/sms/send``, whatever became of it."""

    idempotency_key: str | None
    to: str | None
    status: int | None
    """The answer's status; None when the connection was dropped."""
    replayed: bool
    at: float
    """``time.time()`` on arrival (``calls`` are in the order they were answered)."""


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook the fake posted, and how the receiver answered (None: no answer)."""

    event: str
    transaction_id: str
    status: int | None


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, **extra}}


class FakeSendComms(FakeServer):
    """The fake; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(
        self,
        api_key: str = "sc_live_fake0123456789abcdef",
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        delivery_reports: bool = True,
        lock_seconds: float = 30.0,
        in_progress_wait: float = 1.0,
        rate_limit: int = 10_000,
        window_seconds: int = 60,
        in_progress_retry_after: str | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.delivery_reports = delivery_reports
        self.lock_seconds = lock_seconds
        self.in_progress_wait = in_progress_wait
        self.rate_limit = rate_limit
        self.window_seconds = window_seconds
        self.in_progress_retry_after = in_progress_retry_after
        """SendComms' 409 carries no ``Retry-After``; set one to test a client with it."""
        self._messages: list[SentSms] = []
        self._calls: list[SendCall] = []
        self._webhooks: list[WebhookDelivery] = []
        self._pending_webhooks = 0
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}
        self._locks: dict[str, float] = {}
        self._windows: dict[int, int] = {}
        self._to_scripts: dict[str, deque[Behaviour]] = {}
        self._held: dict[str, asyncio.Event] = {}
        self._carrier_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def close(self) -> None:
        """Stop serving; webhooks still on their way are cancelled."""
        if self._client is not None and not self._loop.is_closed():
            self._call(self._stop_webhooks())
        super().close()

    async def _stop_webhooks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {"api_base_url": self.base_url, "api_key": self.api_key}

    def on_send_to(self, to: str, *behaviours: Behaviour) -> None:
        """How to treat the next send calls to ``to``, one behaviour each."""
        with self.lock:
            self._to_scripts.setdefault(to, deque()).extend(behaviours)

    def release_to(self, to: str) -> None:
        """Let the held (``Stall(None)``) sends to ``to`` finish; later ones wait again."""

        def release_now() -> None:
            self._held.pop(to, asyncio.Event()).set()

        self._loop.call_soon_threadsafe(release_now)

    # ------------------------------------------------------------------ observing

    @property
    def messages(self) -> list[SentSms]:
        """Every message handed to a carrier, in order."""
        with self.lock:
            return list(self._messages)

    def messages_of(self, idempotency_key: str) -> list[SentSms]:
        """The messages sent under ``idempotency_key`` (one, if all went well)."""
        return [m for m in self.messages if m.idempotency_key == idempotency_key]

    @property
    def calls(self) -> list[SendCall]:
        with self.lock:
            return list(self._calls)

    @property
    def webhooks(self) -> list[WebhookDelivery]:
        with self.lock:
            return list(self._webhooks)

    def wait_for_webhooks(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` webhooks were posted and none is still on its way."""
        self.wait_until(
            lambda: len(self._webhooks) >= count and not self._pending_webhooks,
            f"{count} webhooks",
            timeout,
        )

    def post_webhook(self, payload: dict[str, Any]) -> httpx.Response:
        """Post one webhook body (e.g. a ``sendcomms_event``) to ``webhook_url`` now,
        signed as SendComms signs it."""
        if self.webhook_url is None:
            raise RuntimeError("set webhook_url first")
        request = sendcomms_request(self.webhook_secret, payload)
        return httpx.post(self.webhook_url, content=request.body, headers=request.headers)

    # ------------------------------------------------------------------ answering

    async def answer(self, request: FakeRequest) -> Answer | None:
        arrived = time.time()
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, _error("UNAUTHORIZED", "Invalid or missing API key")
        if request.method != "POST" or request.path != SEND_PATH:
            return 404, {}, _error("NOT_FOUND", "Resource not found")
        try:
            payload = request.json()
        except ValueError:
            payload = None
        to = payload.get("to") if isinstance(payload, dict) else None
        key = payload.get("idempotency_key") if isinstance(payload, dict) else None
        key = key if isinstance(key, str) and key else None
        with self.lock:
            behaviour = self._next_behaviour(to if isinstance(to, str) else None)
        answer = await self._send(payload, key, behaviour)
        status, _, body = answer if answer is not None else (None, {}, {})
        replayed = isinstance(body, dict) and "_idempotent" in body
        with self.lock:
            self._calls.append(
                SendCall(key, to if isinstance(to, str) else None, status, replayed, arrived)
            )
            self.lock.notify_all()
        return answer

    def _next_behaviour(self, to: str | None) -> Behaviour | None:
        script = self._to_scripts.get(to or "")
        return script.popleft() if script else self.next_behaviour("send")

    async def _send(
        self, payload: Any, key: str | None, behaviour: Behaviour | None
    ) -> Answer | None:
        limited, window = self._rate_window(behaviour)
        if limited is not None:
            return limited
        invalid = self._validate(payload, behaviour)
        if invalid is not None:
            return invalid[0], window, invalid[1]
        if key is not None:
            earlier = await self._idempotency(key, window)
            if earlier is not None:
                return earlier
        if isinstance(behaviour, Reject) and behaviour.status == 402:  # the lock stays
            return 402, window, _error(behaviour.code, behaviour.message)
        transaction_id = sendcomms_transaction_id(datetime.now(UTC), secrets.token_hex(6))
        if isinstance(behaviour, Stall):  # the upstream carrier is slow; the key stays locked
            await self._slow_upstream(behaviour, payload["to"])
        if isinstance(behaviour, Reject):  # the carrier refused it (a sender, an opt-out)
            return self._failed(
                payload, transaction_id, window, behaviour.status, behaviour.message
            )
        if isinstance(behaviour, Fail) and not behaviour.record:  # the carrier is down
            return self._failed(payload, transaction_id, window, behaviour.status, None)
        data = self._take(payload, key, transaction_id)
        self._report(payload, transaction_id, "sms.sent", None)
        if isinstance(behaviour, Fail):  # died after the carrier took it, before caching
            return behaviour.status, window, _error("INTERNAL_ERROR", "Internal server error")
        if key is not None:
            with self.lock:
                self._cache[key] = (data, time.monotonic())
                self._locks.pop(key, None)
        if isinstance(behaviour, Drop):
            return None
        return 200, window, {"success": True, "data": data}

    async def _slow_upstream(self, stall: Stall, to: str) -> None:
        if stall.seconds is not None:
            await self.stall(stall)
            return
        own = asyncio.ensure_future(self._held.setdefault(to, asyncio.Event()).wait())
        everyone = asyncio.ensure_future(self.stall(stall))
        try:
            await asyncio.wait({own, everyone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            own.cancel()
            everyone.cancel()

    def _failed(
        self,
        payload: dict[str, Any],
        transaction_id: str,
        window: dict[str, str],
        status: int,
        message: str | None,
    ) -> Answer:
        """A send the upstream carrier failed: ``sms.failed`` and SMS_SEND_FAILED; the
        key's lock is left to expire and nothing is cached (as the server does)."""
        self._report(payload, transaction_id, "sms.failed", message or "SMS server unavailable")
        text = message or "Failed to send SMS. Please try again in a few minutes."
        return status, window, _error("SMS_SEND_FAILED", text, transaction_id=transaction_id)

    def _rate_window(self, behaviour: Behaviour | None) -> tuple[Answer | None, dict[str, str]]:
        """Count the request in its fixed window: (a 429 or None, the window's headers)."""
        now = time.time()
        start = math.floor(now / self.window_seconds) * self.window_seconds
        with self.lock:
            count = self._windows[start] = self._windows.get(start, 0) + 1
        reset = start + self.window_seconds
        if isinstance(behaviour, Throttle):
            retry_after = behaviour.retry_after
            seconds = int(retry_after) if retry_after.isdigit() else reset - math.floor(now)
            reset = math.ceil(now + seconds)
        elif count > self.rate_limit:
            seconds = max(1, math.ceil(reset - now))
            retry_after = str(seconds)
        else:
            return None, self._window_headers(str(self.rate_limit - count), reset)
        headers = {**self._window_headers("0", reset), "retry-after": retry_after}
        body = _error(
            "RATE_LIMIT_EXCEEDED",
            "Rate limit exceeded. Please try again later.",
            limit=self.rate_limit,
            remaining=0,
            reset=reset,
            retryAfter=seconds,
        )
        return (429, headers, body), headers

    def _window_headers(self, remaining: str, reset: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": remaining,
            "x-ratelimit-reset": str(reset),
        }

    @staticmethod
    def _validate(payload: Any, behaviour: Behaviour | None) -> tuple[int, Any] | None:
        if not isinstance(payload, dict):
            return 400, _error("INVALID_JSON", "Invalid JSON body")
        for name in ("to", "message"):
            if not payload.get(name):
                return 400, _error("MISSING_FIELD", f"Missing required field: {name}")
        to, message = payload["to"], payload["message"]
        if not isinstance(to, str) or not _PHONE.match(re.sub(r"[\s-]", "", to)):
            return 400, _error(
                "INVALID_PHONE_NUMBER",
                "Invalid phone number. Use E.164 format (e.g., +233540800994)",
            )
        if not isinstance(message, str) or len(message) > MAX_MESSAGE:
            return 400, _error("MESSAGE_TOO_LONG", "Message too long. Maximum 1600 characters")
        if isinstance(behaviour, Reject) and behaviour.code not in _AFTER_LOCK:
            return behaviour.status, _error(behaviour.code, behaviour.message)
        return None

    async def _idempotency(self, key: str, window: dict[str, str]) -> Answer | None:
        """The replay or 409 for a key seen before; None once this request holds its lock."""
        with self.lock:
            replay = self._replay(key, window)
            if replay is not None:
                return replay
            now = time.monotonic()
            if self._locks.get(key, 0.0) <= now:
                self._locks[key] = now + self.lock_seconds
                return None
        await asyncio.sleep(self.in_progress_wait)  # the server looks at its cache again
        with self.lock:
            replay = self._replay(key, window)
        if replay is not None:
            return replay
        headers = dict(window)
        if self.in_progress_retry_after is not None:
            headers["retry-after"] = self.in_progress_retry_after
        body = _error("REQUEST_IN_PROGRESS", "Request is being processed. Please wait.")
        return 409, headers, body

    def _replay(self, key: str, window: dict[str, str]) -> Answer | None:
        """The cached answer under ``key``, replayed; call with the lock held."""
        cached = self._cache.get(key)
        if cached is None or time.monotonic() - cached[1] >= KEY_LIFETIME_SECONDS:
            return None
        headers = {
            **window,
            "x-idempotent-replay": "true",
            "x-idempotent-cached-at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        body = {
            "success": True,
            "data": cached[0],
            "_idempotent": {
                "replayed": True,
                "message": "Duplicate request - returning cached response",
            },
        }
        return 200, headers, body

    def _take(
        self, payload: dict[str, Any], key: str | None, transaction_id: str
    ) -> dict[str, Any]:
        message = payload["message"]
        segments = math.ceil(len(message) / (160 if message.isascii() else 70))
        sms = SentSms(
            transaction_id=transaction_id,
            to=payload["to"],
            message=message,
            sender=payload.get("from"),
            reference=payload.get("reference"),
            idempotency_key=key,
        )
        with self.lock:
            self._messages.append(sms)
            carrier_id = f"SM{next(self._carrier_ids):032x}"
        return {
            "transaction_id": transaction_id,
            "message_id": carrier_id,
            "status": "sent",
            "to": sms.to,
            "message_length": len(message),
            "segments": segments,
            "country": {"code": "233", "name": "Ghana"},
            "region": "africa",
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }

    # ------------------------------------------------------------------ webhooks

    def _report(
        self, payload: dict[str, Any], transaction_id: str, event: str, error: str | None
    ) -> None:
        """Post the send route's webhook (and ``sms.delivered`` after ``sms.sent``) in
        the background, as SendComms does: fire and forget, no retries."""
        if self.webhook_url is None:
            return
        events = [sendcomms_event(event, transaction_id, to=payload["to"], error=error)]
        if event == "sms.sent" and self.delivery_reports:
            events.append(sendcomms_event("sms.delivered", transaction_id, to=payload["to"]))
        with self.lock:
            self._pending_webhooks += 1
        if self._client is None:  # one client for all: a new one per post costs ~ms of CPU
            self._client = httpx.AsyncClient(timeout=30)
        task = asyncio.get_running_loop().create_task(self._post(self._client, events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
        assert self.webhook_url is not None
        try:
            for event in events:
                request = sendcomms_request(self.webhook_secret, event)
                try:
                    answer = await client.post(
                        self.webhook_url, content=request.body, headers=request.headers
                    )
                    status: int | None = answer.status_code
                except httpx.HTTPError:
                    status = None
                delivery = WebhookDelivery(event["event"], event["transaction_id"], status)
                with self.lock:
                    self._webhooks.append(delivery)
        finally:
            with self.lock:
                self._pending_webhooks -= 1
                self.lock.notify_all()


__all__ = [
    "Drop",
    "Fail",
    "FakeSendComms",
    "Reject",
    "SendCall",
    "SentSms",
    "Stall",
    "Throttle",
    "WebhookDelivery",
]
