"""A fake RelayOS (WhatsApp templates) for tests: a real HTTP server on loopback that
behaves as https://docs.relayos.com.br documents, faults included.

    with FakeRelayOS(lifecycle=("SENT", "DELIVERED")) as relayos:
        # configure a ``relayos`` provider with relayos.config_keys(), and point the
        # project's callbackUrl at the receiver (as PUT /v1/projects/me/meta-credentials):
        relayos.set_callback_url(f"{receiver_url}/webhooks/relayos?token={url_token}")
        relayos.on_new_keys(Drop(), None, Fail(503, record=True))  # first attempts only
        ...
        assert len(relayos.messages) == sent

What it does, as documented:

- ``Authorization: Bearer rly_live_...`` on every call, else 401.
- ``POST /v1/messages`` takes ``{to, template, language, variables}`` and answers
  ``success_status`` (the API reference says 200, the guide 202) with ``{id, status:
  "QUEUED", to, template, queuedAt}``. Under an ``Idempotency-Key`` it has seen, it
  answers the stored answer again, same status code and same id, even when the body
  differs, and queues nothing.
- ``GET /v1/messages/{id}`` (404 for an unknown id), ``GET /v1/messages`` (all of them,
  no filters), ``GET /v1/projects/me`` and ``PUT /v1/projects/me/meta-credentials``
  (``metaPhoneNumberId``, ``metaAccessToken`` required; ``callbackUrl`` sets where
  status callbacks go; http on loopback is accepted, unlike RelayOS).
- Status callbacks ``{event, message_id, to, template, status, meta_message_id,
  occurred_at}`` to the callback URL: every status of ``lifecycle`` right after a
  message is queued, and ``report()`` on demand. No retries (none are documented).

What RelayOS does not document, chosen here and written down in
docs/providers/relayos.md: error bodies (``{"error": {"code", "message"}}``), 429 with
``Retry-After``, and which answer a key keeps: only a queued message's, so a key whose
call was refused (400, 429, a 5xx before queueing) is free again.

Faults, by ``FakeServer``'s scripts (``on_send`` for the next calls, ``on_new_keys`` for
the next calls that bring a key not seen before; ``None`` there means no fault):
``Drop`` queues the message and closes the connection unanswered; ``Fail(record=True)``
queues it and answers 5xx (an edge proxy's error after RelayOS committed: a resend under
the key gets the original); ``Fail()`` answers 5xx before queueing; ``Throttle`` 429;
``Reject`` a 4xx; ``Stall`` queues it and holds the answer.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
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
from receiver.testing.relayos import relayos_report, relayos_time

DEFAULT_API_KEY = "rly_live_fake0000000000000000000000"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MESSAGE_PATH = re.compile(r"/v1/messages/([^/]+)")


@dataclass(frozen=True)
class QueuedMessage:
    """A message the fake queued (RelayOS would hand it to Meta): one WhatsApp message."""

    id: str
    to: str
    template: str
    language: str
    variables: dict[str, str]
    idempotency_key: str | None
    queued_at: str
    status: str = "QUEUED"

    def listed(self) -> dict[str, Any]:
        """The message as ``GET /v1/messages/{id}`` shows it."""
        return {
            "id": self.id,
            "status": self.status,
            "to": self.to,
            "template": self.template,
            "queuedAt": self.queued_at,
        }


@dataclass(frozen=True)
class SendCall:
    """One ``POST /v1/messages`` the fake received, whatever it answered."""

    idempotency_key: str | None
    new_key: bool
    """The first call that brought this key (or a call without one)."""
    at: float
    """``time.monotonic()`` on arrival."""


@dataclass(frozen=True)
class Callback:
    """One status callback the fake posted: the receiver's answer, or None if the
    connection failed."""

    message_id: str
    status: str
    http_status: int | None


@dataclass
class _Project:
    meta_phone_number_id: str | None = None
    callback_url: str | None = None
    created_at: str = field(default_factory=lambda: relayos_time(datetime.now(UTC)))


class FakeRelayOS(FakeServer):
    """The fake RelayOS API; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        success_status: int = 202,
        lifecycle: Iterable[str] = (),
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.success_status = success_status
        self.lifecycle = tuple(lifecycle)
        self.lookup_calls = 0
        self._project = _Project()
        self._messages: dict[str, QueuedMessage] = {}
        self._answers: dict[str, tuple[int, dict[str, Any]]] = {}  # key -> stored answer
        self._seen_keys: set[str] = set()
        self._new_key_script: deque[Behaviour | None] = deque()
        self._send_calls: list[SendCall] = []
        self._callbacks: list[Callback] = []
        self._ids = itertools.count(1)
        self._progress: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {"api_base_url": self.base_url, "api_key": self.api_key}

    def set_callback_url(self, url: str) -> None:
        """Where status callbacks go (what PUT /v1/projects/me/meta-credentials sets)."""
        with self.lock:
            self._project.callback_url = url

    def on_new_keys(self, *behaviours: Behaviour | None) -> None:
        """How to treat the next calls that bring an Idempotency-Key not seen before,
        one entry each (None: normally); repeats of a key are not counted here."""
        with self.lock:
            self._new_key_script.extend(behaviours)

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._stop_progress())
        super().close()

    # ------------------------------------------------------------------ observing

    @property
    def callback_url(self) -> str | None:
        with self.lock:
            return self._project.callback_url

    @property
    def messages(self) -> list[QueuedMessage]:
        """Every message queued, in order: what really went out on WhatsApp."""
        with self.lock:
            return list(self._messages.values())

    @property
    def send_calls(self) -> list[SendCall]:
        with self.lock:
            return list(self._send_calls)

    @property
    def callbacks(self) -> list[Callback]:
        with self.lock:
            return list(self._callbacks)

    def message(self, message_id: str) -> QueuedMessage:
        """The message with RelayOS id ``message_id``; KeyError if there is none."""
        with self.lock:
            return self._messages[message_id]

    def message_for_key(self, key: str) -> QueuedMessage:
        """The message queued under Idempotency-Key ``key``; KeyError if there is none."""
        with self.lock:
            return self._messages[self._answers[key][1]["id"]]

    def calls_with_key(self, key: str) -> int:
        return sum(call.idempotency_key == key for call in self.send_calls)

    def wait_for_sends(self, count: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda: len(self._send_calls) >= count, f"{count} send calls", timeout)

    def wait_for_callbacks(self, count: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda: len(self._callbacks) >= count, f"{count} callbacks", timeout)

    def report(self, message_id: str, status: str) -> httpx.Response:
        """Move a message to ``status`` and post its callback now, from this thread."""
        payload = self._advance(message_id, status)
        url = self.callback_url
        if url is None:
            raise RuntimeError("no callbackUrl is set: call set_callback_url() first")
        response = httpx.post(url, json=payload)
        self._record(Callback(message_id, status, response.status_code))
        return response

    # ------------------------------------------------------------------ answering

    async def answer(self, request: FakeRequest) -> Answer | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "UNAUTHORIZED", "missing, malformed or revoked API key")
        if request.path == "/v1/messages" and request.method == "POST":
            return await self._send(request)
        if request.method == "GET" and request.path == "/v1/messages":
            return 200, {}, [message.listed() for message in self.messages]
        if request.method == "GET" and (match := _MESSAGE_PATH.fullmatch(request.path)):
            return await self._lookup(match[1])
        if request.path == "/v1/projects/me" and request.method == "GET":
            return 200, {}, self._project_json()
        if request.path == "/v1/projects/me/meta-credentials" and request.method == "PUT":
            return self._set_credentials(request)
        return _error(404, "NOT_FOUND", f"no route {request.method} {request.path}")

    async def _send(self, request: FakeRequest) -> Answer | None:
        key = request.headers.get("idempotency-key")
        with self.lock:
            new_key = key is None or key not in self._seen_keys
            behaviour = self.next_behaviour("send")
            if behaviour is None and key is not None and new_key and self._new_key_script:
                behaviour = self._new_key_script.popleft()
            if key is not None:
                self._seen_keys.add(key)
            self._send_calls.append(SendCall(key, new_key, time.monotonic()))
            self.lock.notify_all()
            if isinstance(behaviour, Throttle):
                return _error(429, "RATE_LIMITED", "too many requests", behaviour.retry_after)
            if isinstance(behaviour, Reject):
                return _error(behaviour.status, behaviour.code, behaviour.message)
            if isinstance(behaviour, Fail) and not behaviour.record:
                return _error(behaviour.status, "INTERNAL", "provider fault")
            if key is not None and key in self._answers:  # a repeat: the original answer
                status, body = self._answers[key]
                queued = None
            else:
                problem = _invalid(request)
                if problem is not None:
                    return _error(400, "VALIDATION_ERROR", problem)
                queued = self._queue(request.json(), key)
                status, body = self.success_status, _accepted(queued)
                if key is not None:
                    self._answers[key] = (status, body)
        if queued is not None and self.lifecycle:
            self._start_lifecycle(queued.id)
        if isinstance(behaviour, Fail):  # record=True: queued, then the answer is a 5xx
            return _error(behaviour.status, "BAD_GATEWAY", "upstream error")
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        return status, {}, body

    def _queue(self, payload: dict[str, Any], key: str | None) -> QueuedMessage:
        message = QueuedMessage(
            id=f"msg_01hw{next(self._ids):022x}",
            to=payload["to"],
            template=payload["template"],
            language=payload["language"],
            variables=dict(payload.get("variables") or {}),
            idempotency_key=key,
            queued_at=relayos_time(datetime.now(UTC)),
        )
        self._messages[message.id] = message
        return message

    async def _lookup(self, message_id: str) -> Answer | None:
        with self.lock:
            behaviour = self.next_behaviour("lookup")
            self.lookup_calls += 1
            message = self._messages.get(message_id)
        if isinstance(behaviour, Throttle):
            return _error(429, "RATE_LIMITED", "too many requests", behaviour.retry_after)
        if isinstance(behaviour, Fail | Reject):
            return _error(behaviour.status, "INTERNAL", "lookup fault")
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        if message is None:
            return _error(404, "NOT_FOUND", f"no message {message_id}")
        return 200, {}, message.listed()

    def _set_credentials(self, request: FakeRequest) -> Answer:
        try:
            payload = request.json()
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "the body is not JSON")
        if not isinstance(payload, dict):
            return _error(400, "VALIDATION_ERROR", "the body must be an object")
        for name in ("metaPhoneNumberId", "metaAccessToken"):
            if not isinstance(payload.get(name), str) or not payload[name]:
                return _error(400, "VALIDATION_ERROR", f"{name} is required")
        with self.lock:
            self._project.meta_phone_number_id = payload["metaPhoneNumberId"]
            if isinstance(payload.get("callbackUrl"), str):
                self._project.callback_url = payload["callbackUrl"]
        return 200, {}, {**self._project_json(), "updatedAt": relayos_time(datetime.now(UTC))}

    def _project_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "projectId": "proj_01hwfake000000",
                "name": "Fake project",
                "ownerEmail": "owner@example.com",
                "metaPhoneNumberId": self._project.meta_phone_number_id,
                "callbackUrl": self._project.callback_url,
                "createdAt": self._project.created_at,
            }

    # ------------------------------------------------------------------ callbacks

    def _advance(self, message_id: str, status: str) -> dict[str, Any]:
        """Set the message's status; its callback payload."""
        with self.lock:
            message = replace(self._messages[message_id], status=status)
            self._messages[message_id] = message
        return relayos_report(message.id, status, to=message.to, template=message.template)

    def _record(self, callback: Callback) -> None:
        with self.lock:
            self._callbacks.append(callback)
            self.lock.notify_all()

    def _start_lifecycle(self, message_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run_lifecycle(message_id))
        self._progress.add(task)
        task.add_done_callback(self._progress.discard)

    async def _run_lifecycle(self, message_id: str) -> None:
        """Post each status of ``lifecycle`` in turn, as RelayOS does on each change."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10)
        for status in self.lifecycle:
            payload = self._advance(message_id, status)
            url = self.callback_url
            if url is None:
                continue
            try:
                answer: int | None = (await self._client.post(url, json=payload)).status_code
            except httpx.HTTPError:
                answer = None
            self._record(Callback(message_id, status, answer))

    async def _stop_progress(self) -> None:
        for task in list(self._progress):
            task.cancel()
        await asyncio.gather(*self._progress, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()


def _invalid(request: FakeRequest) -> str | None:
    """What is wrong with a send's body, as RelayOS would refuse it; None if nothing."""
    try:
        payload = request.json()
    except ValueError:
        return "the body is not JSON"
    if not isinstance(payload, dict):
        return "the body must be an object"
    if not isinstance(payload.get("to"), str) or not _E164.fullmatch(payload["to"]):
        return "to must be an E.164 number"
    for name in ("template", "language"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            return f"{name} is required"
    variables = payload.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(value, str) for value in variables.values()
    ):
        return "variables must map placeholder numbers to strings"
    return None


def _accepted(message: QueuedMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": "QUEUED",
        "to": message.to,
        "template": message.template,
        "queuedAt": message.queued_at,
    }


def _error(status: int, code: str, message: str, retry_after: str | None = None) -> Answer:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return status, headers, {"error": {"code": code, "message": message}}


__all__ = [
    "DEFAULT_API_KEY",
    "Behaviour",
    "Callback",
    "Drop",
    "Fail",
    "FakeRelayOS",
    "QueuedMessage",
    "Reject",
    "SendCall",
    "Stall",
    "Throttle",
]
