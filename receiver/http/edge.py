"""The HTTP/1.1 connection edge: header limits, timeouts and load shedding.

uvicorn's httptools protocol (0.55) limits none of these. llhttp accepts a request head
of any size with any number of fields, and httptools joins a long header value by
repeated concatenation, so one client sending a 128 MiB header stalled every other
client for seconds. uvicorn's only timer runs between two requests, so sockets that send
nothing, or a head or a body a byte at a time, stayed open until they had used up the
process's file descriptors and legitimate webhooks could no longer connect.

``EdgeProtocol`` is uvicorn's ``HttpToolsProtocol`` with, for each connection
(the ``[server]`` keys, receiver.config.ServerSettings):

- the request head handed to the parser only up to ``max_header_bytes`` (request line
  and header fields, counted as they arrive), and at most ``max_header_fields`` fields:
  over either, 431 problem+json with an ``X-Request-ID``, and the connection is closed;
- a complete head within ``header_timeout_seconds`` of the connection's opening (or of a
  request's first byte after a keep-alive pause), and a complete body within
  ``body_timeout_seconds`` of its head: else 408 problem+json and the connection is
  closed (a connection that sent nothing at all is closed without an answer);
- ``keepalive_timeout_seconds`` for uvicorn's own timer between two requests;
- at most ``max_connections`` open connections (by default what RLIMIT_NOFILE allows,
  see ``descriptor_budget``): a connection beyond it closes the one that has waited
  longest for a request, or itself when every other one is busy with a request, so a
  webhook still gets through.

After a 431 or 408 the answer is sent, our side of the connection is shut, and what the
client still sends is read and dropped for up to LINGER_SECONDS before the socket is
closed, so the client reads its answer instead of a connection reset.

``receiver serve`` always runs this class (receiver.cli), with ``ws="none"``: no route
is a WebSocket, and an upgraded connection would leave these limits. uvicorn's other
protocols (``h11``, ``zttp``) are not supported: under them these limits do not apply
(h11 answers its own 400 to a head still incomplete after 16 KiB, and has no field
limit and no timeouts). The limits come
from the app's lifespan state (``EDGE_STATE_KEY``, set by receiver.app), so the
class is importable by path (``receiver.http.edge:EdgeProtocol``) for worker processes
and keeps no module-level state. Errors uvicorn itself answers (a malformed request:
400, an exception before the app answered: 500) stay ``text/plain``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from receiver.config import ServerSettings
from receiver.errors import HeadersTooLarge, ReceiverError, RequestTimeout
from receiver.http.middleware import fresh_request_id
from receiver.http.problems import for_error
from receiver.services.metrics import Metrics

log = logging.getLogger("receiver.http")

EDGE_STATE_KEY = "receiver.edge"
FD_RESERVE = 64
"""Descriptors kept for everything but connections: the SQLite files of the reader and
the writer, logs, the event loop's own, outbound sends (a running server uses ~25)."""
LINGER_SECONDS = 2.0
SHED_WARNING_SECONDS = 10.0


def descriptor_budget(configured: int | None) -> tuple[int, int]:
    """(max_connections, listen backlog) within the soft RLIMIT_NOFILE.

    Connections are shed when one arrives over the cap, but only once uvicorn calls
    ``connection_made``, an event-loop iteration after libuv accepted a whole burst
    of them, and the shed sockets are closed an iteration later still. So beside
    FD_RESERVE the budget keeps room for two bursts, each at most the listen backlog:
    cap + 2 x backlog = what is left. Raises ReceiverError when the limit is too low
    to serve at all."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    spare = soft - FD_RESERVE
    if spare < 8:
        raise ReceiverError(
            f"RLIMIT_NOFILE is {soft}: too low to serve (at least {FD_RESERVE + 8};"
            " raise it with ulimit -n or LimitNOFILE=)"
        )
    backlog = min(2048, spare // 4)
    allowed = spare - 2 * backlog
    if configured is not None and configured > allowed:
        log.warning(
            "server.max_connections = %d is more than RLIMIT_NOFILE (%d) allows; using %d",
            configured,
            soft,
            allowed,
        )
    return min(configured or allowed, allowed), backlog


class Edge:
    """One app's connection limits, its connections waiting for a request (longest
    first), and the metrics they count into. Each worker process builds its own."""

    def __init__(self, settings: ServerSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.max_connections, _ = descriptor_budget(settings.max_connections)
        log.info("accepting at most %d connections", self.max_connections)
        self.metrics = metrics
        metrics.http_connections_max.set(self.max_connections)
        self.waiting: dict[EdgeProtocol, None] = {}
        self._shed_warned_at = -SHED_WARNING_SECONDS
        self.closing = asyncio.Event()
        """Set when the server begins to shut down: answers that would never end (the
        change feed's event stream) end, so the shutdown need not wait for them."""

    def refused(self, reason: str) -> None:
        self.metrics.http_refused.labels(reason).inc()

    def warn_shedding(self, now: float) -> None:
        if now - self._shed_warned_at >= SHED_WARNING_SECONDS:
            self._shed_warned_at = now
            log.warning(
                "%d connections open, the limit (server.max_connections): closing the ones"
                " that waited longest for a request",
                self.max_connections,
            )


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that is over a limit."""

    def __init__(self, error: ReceiverError) -> None:
        super().__init__(error.detail)
        self.error = error


class _OneSend:
    """The connection's transport as one answer writes to it: what it writes within
    one event-loop iteration goes out in one ``write`` (uvicorn writes an answer's head
    and its body apart: two system calls and two TCP segments per webhook, a sixth of
    the event loop's time in the receiver row of bench/ingest.py). A write
    that brings the waiting bytes to ``MAX_WAITING_BYTES`` goes at once, so a large or
    streamed answer meets the transport's flow control as before; ``close`` sends what
    waits first."""

    MAX_WAITING_BYTES = 65536

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._waiting: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(data)
        self._size += len(data)
        if self._size >= self.MAX_WAITING_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what waits (nothing once the connection is closing)."""
        if self._waiting and not self._transport.is_closing():
            self._transport.write(b"".join(self._waiting))
        self._waiting, self._size = [], 0

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; see the module docstring."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        edge = app_state.get(EDGE_STATE_KEY)
        if not isinstance(edge, Edge):  # an app without our lifespan: the defaults
            edge = app_state[EDGE_STATE_KEY] = Edge(ServerSettings(), Metrics())
        self.edge: Edge = edge
        self.limits = edge.settings
        self.timeout_keep_alive = self.limits.keepalive_timeout_seconds
        self._head_bytes = 0
        self._head_fields = 0
        self._heads = 0  # request heads completed on this connection
        self._awaiting_head = True
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None

    # -- connections: count, cap, time out --------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head timer, and shed a connection when over the cap."""
        super().connection_made(transport)
        self.edge.metrics.http_connections.inc()
        self.edge.waiting[self] = None
        self._arm(self.limits.header_timeout_seconds, self._head_timed_out)
        if len(self.connections) > self.edge.max_connections:
            self.edge.warn_shedding(self.loop.time())
            victim = next(iter(self.edge.waiting))  # ourselves only if all others are busy
            victim._shed()

    def shutdown(self) -> None:
        """The server is shutting down (uvicorn calls this on every connection)."""
        self.edge.closing.set()
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop our timer and forget the connection (uvicorn forgets it too)."""
        self._disarm()
        self.edge.waiting.pop(self, None)
        self.edge.metrics.http_connections.dec()
        super().connection_lost(exc)

    def _shed(self) -> None:
        self.edge.waiting.pop(self, None)  # now: the next arrival must pick another one
        self.edge.refused("shed")
        self.transport.close()

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head waits while the app answers the request before it: the
            # app's time is not the client's.
            self._arm(self.limits.header_timeout_seconds, self._head_timed_out)
            return
        if self._head_bytes == 0:  # nothing came since the connection opened
            self.edge.refused("idle")
            self.transport.close()
            return
        seconds = self.limits.header_timeout_seconds
        self._refuse(
            RequestTimeout(f"the request head did not arrive within {seconds:g} s"),
            "header_timeout",
        )

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle.response_started or self.pipeline:  # an answer is, or may be, under way
            self.edge.refused("body_timeout")
            self.transport.close()
            return
        # As uvicorn's connection_lost does: the app's receive() now returns
        # http.disconnect, and whatever it still sends is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        seconds = self.limits.body_timeout_seconds
        self._refuse(
            RequestTimeout(f"the request body did not arrive within {seconds:g} s"),
            "body_timeout",
        )

    def on_response_complete(self) -> None:
        """Between requests the connection is idle again: the first one shed."""
        super().on_response_complete()
        idle = self.cycle.response_complete and self._awaiting_head  # no pipelined request
        if idle and not self.transport.is_closing():
            self.edge.waiting.pop(self, None)
            self.edge.waiting[self] = None

    # -- the request head: bytes, fields ----------------------------------------------

    def data_received(self, data: bytes) -> None:
        """uvicorn hands all bytes to the parser at once; a request head goes to it
        here only up to max_header_bytes, the rest once the head is complete."""
        if self._refused:  # lingering after our answer: drop what still comes
            return
        view = memoryview(data)
        while view and self._awaiting_head and not self.transport.is_closing():
            if self._timer is None:  # a request's first byte after a keep-alive pause
                self._arm(self.limits.header_timeout_seconds, self._head_timed_out)
            room = self.limits.max_header_bytes - self._head_bytes
            part, view = view[:room], view[room:]
            self._head_bytes += len(part)
            heads = self._heads
            self._feed(part)
            if self._heads == heads and self._head_bytes >= self.limits.max_header_bytes:
                if not self.transport.is_closing():
                    limit = self.limits.max_header_bytes
                    self._refuse(
                        HeadersTooLarge(f"the request head is over {limit} bytes"),
                        "header_bytes",
                    )
                return
        if view and not self.transport.is_closing():
            self._feed(view)

    def _feed(self, data: memoryview) -> None:
        """uvicorn's data_received without the 400 for our own refusal: a parser
        callback's exception reaches us as HttpParserCallbackError."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadRefused):
                self._refuse(exc.__context__.error, "header_fields")
            else:
                self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count the fields; over the limit, stop the parser (see ``_feed``)."""
        self._head_fields += 1
        if self._head_fields > self.limits.max_header_fields:
            limit = self.limits.max_header_fields
            raise _HeadRefused(HeadersTooLarge(f"the request has over {limit} header fields"))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: now the body has body_timeout_seconds. Its answer will
        be written in one send (``_OneSend``)."""
        self._awaiting_head = False
        self._heads += 1
        self.edge.waiting.pop(self, None)
        self._arm(self.limits.body_timeout_seconds, self._body_timed_out)
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.transport is self.transport:
            self.cycle.transport = _OneSend(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        """The body is complete: the app's time starts, and the next head is counted
        from zero."""
        self._disarm()
        self._awaiting_head = True
        self._head_bytes = self._head_fields = 0
        super().on_message_complete()

    # -- our own answers ----------------------------------------------------------------

    def _refuse(self, error: ReceiverError, reason: str) -> None:
        """Answer ``error`` as problem+json, shut our side, drop what still comes for
        up to LINGER_SECONDS, then close."""
        self._refused = True
        self.edge.refused(reason)
        self.edge.waiting.pop(self, None)
        request_id = fresh_request_id()
        answer = for_error(error, request_id)
        headers = [
            *self.server_state.default_headers,
            *answer.raw_headers,
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[error.status] + head + b"\r\n" + answer.body)
        log.info(
            "refused: %s",
            error.detail,
            extra={
                "request_id": request_id,
                "status": error.status,
                "reason": reason,
                "client": self.client[0] if self.client else None,
            },
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_SECONDS, self.transport.close)
