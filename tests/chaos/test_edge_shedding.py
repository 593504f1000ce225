"""More idle sockets than the process has file descriptors: the server sheds the idlest
connections and a signed webhook is still answered (receiver.http.edge)."""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import time
from collections.abc import Iterator

import pytest
from conftest import Server, write_config
from edge_client import is_closed_now, metric

from receiver.testing import standard_report, standard_request

NOFILE = 100
IDLE_SOCKETS = 150  # more than the server may have descriptors


def lower_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started with RLIMIT_NOFILE 100, whose timeouts are too long to help."""
    workdir = tmp_path_factory.mktemp("edge-shedding")
    settings = {"server": {"header_timeout_seconds": 120, "keepalive_timeout_seconds": 120}}
    server = Server(workdir, write_config(workdir, settings), preexec_fn=lower_nofile).start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


def test_idle_sockets_beyond_the_descriptor_limit_do_not_keep_a_webhook_out(
    server: Server,
) -> None:
    address = ("127.0.0.1", server.port)
    cap = metric(server, "receiver_http_connections_max")
    assert cap is not None and 0 < cap < NOFILE
    with contextlib.ExitStack() as stack:
        idle = []
        for count in range(1, IDLE_SOCKETS + 1):
            idle.append(stack.enter_context(socket.create_connection(address, timeout=10)))
            if count % 4 == 0:  # a few at a time: the listen backlog is small at this limit
                time.sleep(0.02)
        request = standard_request(server.secret(), standard_report("edge-shed-1", "delivered"))
        answer = server.post(request, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == 1

        # The server closed all but at most `cap` of the idle sockets, the idlest first.
        deadline = time.monotonic() + 10
        while (closed := sum(is_closed_now(sock) for sock in idle)) < IDLE_SOCKETS - cap:
            assert time.monotonic() < deadline, f"only {closed} idle sockets were shed"
            time.sleep(0.1)
    assert metric(server, "receiver_http_refused_total", {"reason": "shed"}) >= closed
    assert server.process is not None and server.process.poll() is None
