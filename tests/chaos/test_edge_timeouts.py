"""Connections that send no complete request in time are closed (README "HTTP limits"):
idle sockets, a head or a body a byte at a time, idle keep-alive connections. Against a
real ``receiver serve`` with 1-second timeouts; no test asserts how fast anything is."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from conftest import Server, running_server
from edge_client import closed_by_server, connect, metric, read_answer, trickle

from receiver.testing import standard_report, standard_request

TIMEOUTS = {"header_timeout_seconds": 1, "body_timeout_seconds": 1, "keepalive_timeout_seconds": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "edge-timeouts", {"server": TIMEOUTS}) as server:
        yield server


def log_lines(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines() if line]


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: Server) -> None:
    with connect(server) as sock:
        assert closed_by_server(sock), "an idle connection stayed open"
    assert metric(server, "receiver_http_refused_total", {"reason": "idle"}) >= 1


def test_a_head_sent_a_byte_at_a_time_is_cut_off_with_408(server: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with connect(server) as sock:
        sent = trickle(sock, head, every=0.1)
        answer = read_answer(sock)
        assert closed_by_server(sock)
    assert sent < len(head)
    assert answer is not None
    assert "head" in answer.problem(408, "REQUEST_TIMEOUT")["detail"]


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(server: Server) -> None:
    request = standard_request(server.secret(), standard_report("edge-slow-body", "delivered"))
    head = f"POST {request.path} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in request.headers.items()
    )
    head += f"content-length: {len(request.body)}\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(head.encode())
        sent = trickle(sock, request.body, every=0.1)
        answer = read_answer(sock)
        assert closed_by_server(sock)
    assert sent < len(request.body)
    assert answer is not None
    assert "body" in answer.problem(408, "REQUEST_TIMEOUT")["detail"]
    # The app saw the client go: an access line with 499, no error and no stack trace.
    deadline = time.monotonic() + 10
    while not any(line.get("status") == 499 for line in log_lines(server)):
        assert time.monotonic() < deadline, "no access line for the cut-off request"
        time.sleep(0.05)
    assert not [line for line in log_lines(server) if line["level"] in ("error", "critical")]
    assert "Traceback" not in server.log_path.read_text()


def test_a_slow_but_timely_request_is_served(server: Server) -> None:
    """The timeouts bound a whole head and a whole body, not each pause: a webhook whose
    head and body come in pieces well within them is answered 200."""
    request = standard_request(server.secret(), standard_report("edge-in-time", "delivered"))
    head = f"POST {request.path} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in request.headers.items()
    )
    head += f"content-length: {len(request.body)}\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(head.encode()[:20])
        time.sleep(0.2)
        sock.sendall(head.encode()[20:] + request.body[:10])
        time.sleep(0.2)
        sock.sendall(request.body[10:])
        answer = read_answer(sock)
    assert answer is not None and answer.status == 200, answer
    assert json.loads(answer.body)["applied"] == 1


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_answer(sock)
        assert answer is not None and answer.status == 200
        assert "close" not in answer.headers.get("connection", "")
        assert closed_by_server(sock), "an idle keep-alive connection stayed open"
