"""A scriptable loopback HTTP server, the machinery of every fake provider API.

A fake provider (``FakeProvider`` for ``standard``, one per other type that sends)
subclasses ``FakeServer`` and implements ``answer(request)`` in its provider's words.
The server gives it what a framework would not: holding an answer (``Stall``), closing
the connection after taking the message without answering (``Drop``), refusing
connections (``refuse_connections``), and per-call scripts of such faults (``on_send``,
``on_lookup``) that a test sets before the calls arrive.

It is a plain asyncio HTTP/1.1 server on its own thread, one request per connection.
State shared with the test thread is guarded by ``lock`` (a ``threading.Condition``,
so a test can ``wait_for`` what the server records).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import httpx

RECHECK_SECONDS = 0.05
"""How often ``wait_until`` checks its condition when nothing notifies it."""


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
    """Refuse the message: ``status`` with the provider's error body; take nothing."""

    status: int = 400
    code: str = "INVALID_NUMBER"
    message: str = "the number is not reachable"


Behaviour = Stall | Drop | Throttle | Fail | Reject
Script = Literal["send", "lookup"]


@dataclass(frozen=True)
class FakeRequest:
    """One request as the fake received it (header names lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None


Answer = tuple[int, dict[str, str], Any]
"""(status, extra headers, JSON payload); ``answer`` returns None to drop the
connection instead."""


class FakeServer(ABC):
    """The server; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.lock = threading.Condition()
        self._scripts: dict[Script, deque[Behaviour]] = {"send": deque(), "lookup": deque()}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._released = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def answer(self, request: FakeRequest) -> Answer | None:
        """The answer to ``request`` in the provider's words; None drops the connection.
        Runs on the server's loop: take ``lock`` for shared state, never across an await."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
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

    def __enter__(self) -> Self:
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

    # ------------------------------------------------------------------ scripting

    def on_send(self, *behaviours: Behaviour) -> None:
        """How to treat the next send calls, one behaviour each; then normally."""
        with self.lock:
            self._scripts["send"].extend(behaviours)

    def on_lookup(self, *behaviours: Behaviour) -> None:
        """How to treat the next lookups (``Fail``, ``Throttle``, ``Stall``, ``Drop``)."""
        with self.lock:
            self._scripts["lookup"].extend(behaviours)

    def next_behaviour(self, script: Script) -> Behaviour | None:
        """The scripted behaviour for this call, if any. Call with ``lock`` held."""
        queue = self._scripts[script]
        return queue.popleft() if queue else None

    def wait_until(self, done: Any, what: str, timeout: float = 20.0) -> None:
        """Block until ``done()`` (called with ``lock`` held) is true; TimeoutError
        naming ``what`` otherwise. ``done`` is checked whenever the server records
        something and at least every ``RECHECK_SECONDS``, so it may also look at state
        outside the server (a database the test reads)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.lock.wait_for(done, min(RECHECK_SECONDS, timeout)):
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise TimeoutError(f"timed out waiting for {what}")

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the server's loop beside the answers (a delivery report the
        provider posts back later); ``close()`` cancels it. Call it from ``answer``."""
        task = asyncio.ensure_future(work)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def stall(self, stall: Stall) -> None:
        """Hold the current answer as ``stall`` says."""
        if stall.seconds is None:
            await self._released.wait()
        else:
            await asyncio.sleep(stall.seconds)

    # ------------------------------------------------------------------ the server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            answer = await self.answer(await _read_request(reader))
            if answer is not None:
                writer.write(_response(*answer))
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


async def _close(server: asyncio.Server) -> None:
    server.close()  # stops listening at once; open connections carry on


async def _read_request(reader: asyncio.StreamReader) -> FakeRequest:
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
    return FakeRequest(method, url.path, parse_qs(url.query), headers, body)


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
    "Answer",
    "Behaviour",
    "Drop",
    "Fail",
    "FakeRequest",
    "FakeServer",
    "Reject",
    "Stall",
    "Throttle",
]
