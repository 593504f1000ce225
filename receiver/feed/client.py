"""The delivery worker's HTTP client: keep-alive HTTP/1.1 POSTs to one subscriber.

A delivery is one POST per change, so the client's own cost is paid per change, in the
event loop that also serves the webhooks. aiohttp's client cost 140 us of CPU per POST
on loopback, which alone took ingest with one subscriber attached down to 0.72x of
ingest without (docs/performance.md); this one costs about 40 us: a request is one
``write`` of bytes prepared once per subscriber but for the signed headers, and the
answer is parsed by httptools (llhttp, as uvicorn parses requests).

It does what a webhook delivery needs and no more: POST a body of known length over
plain TCP or TLS (the default context: the system's CAs, the host name checked), user
and password of the URL as Basic authentication; the answer's status and
``Retry-After``, and at most ``MAX_ANSWER_BYTES`` of its body read (a longer one closes
the connection); one deadline per attempt, connecting included. No redirects, proxies,
cookies or compression. An idle connection is kept for ``IDLE_SECONDS``; one the
subscriber closed as the request went out (no byte of an answer) is tried once more on
a new connection: the change may arrive twice, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

import httptools

MAX_ANSWER_BYTES = 65536
"""Of a subscriber's answer body, read so its connection can be kept (and not used)."""
IDLE_SECONDS = 4.0
"""A connection idle this long is closed rather than used: below the 5 s after which
common servers (uvicorn, Node.js) close an idle keep-alive connection."""


class PostFailed(Exception):
    """No answer: the connection could not be made, was lost, or the answer was not
    HTTP. The message says which (no URL, no secret)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the worker needs of a subscriber's answer."""

    status: int
    retry_after: str | None


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: one request at a time, its answer parsed as it
    arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Answer] | None = None
        self._status = 0
        self._retry_after: str | None = None
        self._body_bytes = 0
        self.answered = False
        """Some byte of the current request's answer arrived."""
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def exchange(self, request: bytes) -> asyncio.Future[Answer]:
        """Send ``request``: its answer, or PostFailed."""
        assert self.transport is not None, "connected"
        self._answer = asyncio.get_running_loop().create_future()
        self._status, self._retry_after, self._body_bytes = 0, None, 0
        self.answered = False
        self.transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"not an HTTP answer: {exc}")

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_ANSWER_BYTES:  # the status is all we need
            self._settle(keep=False)

    def on_message_complete(self) -> None:
        self._settle(keep=self._parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._status:  # an answer delimited by the connection's close
            self._settle(keep=False)
        else:
            self._fail(f"connection lost: {exc or 'closed by the subscriber'}")

    def _settle(self, keep: bool) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(Answer(self._status, self._retry_after))
        self._answer = None
        if not keep:
            self.close()

    def _fail(self, reason: str) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(PostFailed(reason))
        self._answer = None
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class SubscriberClient:
    """POSTs to one URL over a pool of kept connections (at most as many as POSTs at
    once: the worker's ``concurrency``)."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http or https URL with a host")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._timeout = timeout_seconds
        self._idle: list[_Connection] = []
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\n"
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            head += f"Authorization: Basic {base64.b64encode(user.encode()).decode()}\r\n"
        self._head = head.encode("ascii")

    async def post(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST ``body`` with ``headers`` (Content-Length is added); the answer, or
        PostFailed, or TimeoutError after the client's timeout."""
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = b"".join(
            (self._head, fields.encode("latin-1"), b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        async with asyncio.timeout(self._timeout):
            connection = self._kept()
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except PostFailed:
                    if connection.answered:
                        raise
            return await self._exchange(await self._connect(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> Answer:
        try:
            answer = await connection.exchange(request)
        except BaseException:  # lost, or cancelled mid-answer (timeout): not reusable
            connection.close()
            raise
        if connection.reusable:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        return answer

    def _kept(self) -> _Connection | None:
        """The most recently used kept connection that is still good, if any."""
        oldest = time.monotonic() - IDLE_SECONDS
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable and connection.idle_since > oldest:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, self._host, self._port, ssl=self._ssl
            )
        except (OSError, ssl.SSLError) as exc:
            raise PostFailed(f"cannot connect: {exc}") from exc
        return connection

    def close(self) -> None:
        """Close the kept connections (those in use close when their POST ends)."""
        while self._idle:
            self._idle.pop().close()
