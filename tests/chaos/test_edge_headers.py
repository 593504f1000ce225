"""Request heads over the limits get 431 problem+json, and other clients are served
meanwhile (README "HTTP limits"; receiver.http.edge), against a real ``receiver serve``."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator

import pytest
from conftest import Server, running_server
from edge_client import connect, exchange, metric, read_answer

from receiver.testing import standard_report, standard_request

HEADER_BYTES = 65536  # the defaults of [server]
HEADER_FIELDS = 100
HUGE = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "edge-headers") as server:
        yield server


def head_of(size: int) -> bytes:
    """A GET /healthz head of exactly ``size`` bytes (request line to blank line)."""
    start, end = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def head_with_fields(count: int) -> bytes:
    fields = b"Host: x\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(count - 1))
    return b"GET /healthz HTTP/1.1\r\n" + fields + b"\r\n"


def test_a_huge_header_is_refused_while_another_client_is_served(server: Server) -> None:
    with connect(server) as huge:
        huge.sendall(b"POST /webhooks/default HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 40000)
        # Meanwhile, with that head still open: a signed webhook is answered.
        request = standard_request(server.secret(), standard_report("edge-huge-1", "delivered"))
        answer = server.post(request, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == 1
        assert not select.select([huge], [], [], 0)[0], "the huge head was answered too early"

        # The rest of a 32 MiB header: the server answers 431 long before it is all sent.
        huge.setblocking(False)
        sent, chunk = 0, b"a" * 65536
        deadline = time.monotonic() + 30
        while sent < HUGE:
            readable, writable, _ = select.select([huge], [huge], [], 10)
            assert readable or writable, "the server neither reads nor answers"
            assert time.monotonic() < deadline, f"the server is still reading, {sent} bytes in"
            if readable:
                break
            try:
                sent += huge.send(chunk)
            except (BlockingIOError, InterruptedError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        huge.setblocking(True)
        refused = read_answer(huge)
    assert sent < HUGE
    assert refused is not None, "the connection was cut without the 431"
    problem = refused.problem(431, "HEADERS_TOO_LARGE")
    assert str(HEADER_BYTES) in problem["detail"]
    assert refused.headers["connection"] == "close"
    assert metric(server, "receiver_http_refused_total", {"reason": "header_bytes"}) >= 1


def test_a_head_of_exactly_the_byte_limit_is_served_and_one_more_byte_is_not(
    server: Server,
) -> None:
    assert exchange(server, head_of(HEADER_BYTES)).status == 200
    exchange(server, head_of(HEADER_BYTES + 1)).problem(431, "HEADERS_TOO_LARGE")


def test_the_byte_limit_holds_however_the_head_is_split(server: Server) -> None:
    """Counted as bytes arrive: a head over the limit sent in small pieces is refused too."""
    head = head_of(HEADER_BYTES + 1000)
    with connect(server) as sock:
        for start in range(0, len(head), 4096):
            sock.sendall(head[start : start + 4096])
            time.sleep(0.001)
            if select.select([sock], [], [], 0)[0]:
                break
        refused = read_answer(sock)
    assert refused is not None
    refused.problem(431, "HEADERS_TOO_LARGE")


def test_header_fields_up_to_the_limit_are_served_and_more_are_refused(server: Server) -> None:
    assert exchange(server, head_with_fields(HEADER_FIELDS)).status == 200
    with connect(server) as sock:
        sock.sendall(head_with_fields(HEADER_FIELDS + 1))
        refused = read_answer(sock)
        assert sock.recv(1) == b"", "the connection stays open after a 431"
    assert refused is not None
    problem = refused.problem(431, "HEADERS_TOO_LARGE")
    assert "header fields" in problem["detail"]
    assert metric(server, "receiver_http_refused_total", {"reason": "header_fields"}) >= 1


def test_a_keep_alive_connection_counts_each_head_on_its_own(server: Server) -> None:
    """Two requests of 90 fields each on one connection: neither is over the limit."""
    with connect(server) as sock:
        for _ in range(2):
            sock.sendall(head_with_fields(90))
            answer = read_answer(sock)
            assert answer is not None and answer.status == 200, answer


def test_a_malformed_request_is_uvicorns_plain_text_400(server: Server) -> None:
    """Documented (README): what uvicorn itself answers is text/plain, not problem+json."""
    answer = exchange(server, b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")
    assert answer.status == 400
    assert answer.headers["content-type"].startswith("text/plain")
