"""A fake SMS provider for tests: a real HTTP server on loopback that speaks the
``standard`` send API (contract section 6) and can be told how to misbehave.

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

It is a plain asyncio HTTP/1.1 server on its own thread (one request per connection),
so it can do what a framework would not let it: hold an answer, or close the connection
after it took the message without answering.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from receiver.testing.standard import standard_report, standard_request


@dataclass(frozen=True)
class Stall:
    """Take the message, then hold the answer ``seconds`` (None: until ``release()``)."""

    seconds: float | None = None


@dataclass(frozen=True)
class Drop:
    """Take the message, then close the connection without answering."""


@dataclass(frozen=True)
class Throttle:
    """Answer 429 with this ``Retry-After`` (delta-seconds or an HTTP-date); take nothing."""

    retry_after: str


@dataclass(frozen=True)
class Fail:
    """Answer ``status`` (5xx); ``record``: take the message first ("sent, answered 500")."""

    status: int = 500
    record: bool = False


@dataclass(frozen=True)
class Reject:
    """Refuse the message: ``status`` with JSON ``{"code", "message"}``; take nothing."""

    status: int = 400
    code: str = "INVALID_NUMBER"
    message: str = "the number is not reachable"


Behaviour = Stall | Drop | Throttle | Fail | Reject


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


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


_Answer = tuple[int, dict[str, str], Any]
_DROP = None


class FakeProvider:
    """The fake provider; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(self, api_key: str = "fake-provider-key", port: int = 0) -> None:
        self.api_key = api_key
        self.port = port
        self.lookup_calls = 0
        self._lock = threading.Condition()
        self._messages: dict[str, FakeMessage] = {}
        self._by_key: dict[str, tuple[FakeMessage, bytes]] = {}
        self._send_calls: list[SendCall] = []
        self._send_script: deque[Behaviour] = deque()
        self._lookup_script: deque[Behaviour] = deque()
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._released = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {"api_base_url": self.base_url, "api_key": self.api_key}

    def start(self) -> FakeProvider:
        """Listen (again) on ``port``; the first start picks a free one."""
        if not self._thread.is_alive():
            self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def refuse_connections(self) -> None:
        """Stop listening, so connections are refused, until ``start()`` again."""
        server, self._server = self._server, None
        if server is not None:
            self._call(_close(server))

    def release(self) -> None:
        """Let the answers held so far (``Stall(None)``) go; later stalls wait again."""

        def release_now() -> None:
            self._released.set()
            self._released = asyncio.Event()

        self._loop.call_soon_threadsafe(release_now)

    def close(self) -> None:
        """Stop serving, drop every connection and end the thread; safe to call twice."""
        if self._thread.is_alive():
            self.refuse_connections()
            self._call(self._cancel_handlers())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _cancel_handlers(self) -> None:
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    # ------------------------------------------------------------------ scripting and observing

    def on_send(self, *behaviours: Behaviour) -> None:
        """How to treat the next send calls, one behaviour each; then normally."""
        with self._lock:
            self._send_script.extend(behaviours)

    def on_lookup(self, *behaviours: Behaviour) -> None:
        """How to treat the next lookups (``Fail``, ``Throttle``, ``Stall``, ``Drop``)."""
        with self._lock:
            self._lookup_script.extend(behaviours)

    def accept(self, reference: str, to: str, body: str) -> FakeMessage:
        """Take a message as if it had been sent before (by a worker that then died)."""
        with self._lock:
            return self._new_message({"reference": reference, "to": to, "body": body}, None)

    @property
    def messages(self) -> list[FakeMessage]:
        """Every message accepted, in order: what really went out to handsets."""
        with self._lock:
            return list(self._messages.values())

    @property
    def send_calls(self) -> list[SendCall]:
        with self._lock:
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
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._send_calls) >= count, timeout):
                raise TimeoutError(f"{len(self._send_calls)} send calls, expected {count}")

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

    # ------------------------------------------------------------------ the server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await _read_request(reader)
            answer = await self._answer(request)
            if answer is not _DROP:
                status, headers, payload = answer
                writer.write(_response(status, headers, payload))
                await writer.drain()
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass  # the client went away, or sent something we do not speak
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, request: _Request) -> _Answer | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, {"code": "UNAUTHORIZED", "message": "bad API key"}
        if request.path != "/messages" or request.method not in ("GET", "POST"):
            return 404, {}, {"code": "NOT_FOUND", "message": "no such route"}
        if request.method == "GET":
            return await self._lookup(request)
        return await self._send(request)

    async def _send(self, request: _Request) -> _Answer | None:
        key = request.headers.get("idempotency-key")
        try:
            payload = json.loads(request.body)
            reference = payload.get("reference")
        except (ValueError, AttributeError):
            return 400, {}, {"code": "INVALID_REQUEST", "message": "the body is not JSON"}
        with self._lock:
            behaviour = self._send_script.popleft() if self._send_script else None
            self._send_calls.append(SendCall(reference, key, time.monotonic()))
            self._lock.notify_all()
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
            return _DROP
        if isinstance(behaviour, Stall):
            await self._stall(behaviour)
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

    async def _lookup(self, request: _Request) -> _Answer | None:
        reference = request.query.get("reference", [""])[0]
        with self._lock:
            behaviour = self._lookup_script.popleft() if self._lookup_script else None
            self.lookup_calls += 1
            found = [_listed(m) for m in self._messages.values() if m.reference == reference]
        if isinstance(behaviour, Throttle):
            return 429, {"retry-after": behaviour.retry_after}, {"code": "TOO_MANY_REQUESTS"}
        if isinstance(behaviour, Fail | Reject):
            return behaviour.status, {}, {"code": "INTERNAL", "message": "lookup fault"}
        if isinstance(behaviour, Drop):
            return _DROP
        if isinstance(behaviour, Stall):
            await self._stall(behaviour)
        return 200, {}, {"items": found}

    async def _stall(self, stall: Stall) -> None:
        if stall.seconds is None:
            await self._released.wait()
        else:
            await asyncio.sleep(stall.seconds)


async def _close(server: asyncio.Server) -> None:
    server.close()  # stops listening at once; open connections carry on


def _listed(message: FakeMessage) -> dict[str, Any]:
    return {"id": message.id, "reference": message.reference, "status": "queued"}


async def _read_request(reader: asyncio.StreamReader) -> _Request:
    """One HTTP/1.1 request with a Content-Length body (what httpx sends)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head.split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    url = urlsplit(target)
    return _Request(method, url.path, parse_qs(url.query), headers, body)


def _response(status: int, headers: dict[str, str], payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    lines = [
        f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status)}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


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
