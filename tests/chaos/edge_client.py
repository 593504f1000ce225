"""Raw-socket HTTP/1.1 for the chaos tests: what httpx will not do on purpose (half a
head, a body a byte at a time, thousands of header bytes, idle sockets)."""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

from conftest import Server
from prometheus_client.parser import text_string_to_metric_families

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self, status: int, code: str) -> dict[str, Any]:
        """The problem+json body, checked as README "HTTP API" describes it."""
        assert self.status == status, (self.status, self.body)
        assert self.headers["content-type"] == PROBLEM
        problem: dict[str, Any] = json.loads(self.body)
        assert problem["status"] == status
        assert problem["code"] == code
        assert problem["request_id"] == self.headers["x-request-id"]
        assert {"type", "title", "detail"} <= set(problem)
        return problem


def connect(server: Server, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_answer(sock: socket.socket) -> RawAnswer | None:
    """One answer (with Content-Length), or None when the server closed without one."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            assert not data, f"the server closed in the middle of an answer: {data!r}"
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "the server closed in the middle of a body"
        body += chunk
    return RawAnswer(int(status_line.split()[1]), headers, body)


def exchange(server: Server, data: bytes) -> RawAnswer:
    """Send ``data`` on a new connection and read the one answer."""
    with connect(server) as sock:
        sock.sendall(data)
        answer = read_answer(sock)
    assert answer is not None, "the server closed without an answer"
    return answer


def closed_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    """True once the server has closed the connection (end of stream or reset) and sent
    nothing more; False if it is still open after ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def is_closed_now(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` already (no waiting; blocking or not)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def trickle(sock: socket.socket, data: bytes, every: float, limit: float = 20) -> int:
    """Send ``data`` one byte every ``every`` seconds until the server answers or
    closes; the number of bytes sent. Fails after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    for sent, byte in enumerate(data):
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            return sent
        assert time.monotonic() < deadline, "the server let a slow client go on"
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return sent
    raise AssertionError("all bytes were sent: the server never cut the client off")


def metric(server: Server, name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample of ``GET /metrics``, or None if it is absent."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
    assert answer is not None and answer.status == 200
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return float(sample.value)
    return None
