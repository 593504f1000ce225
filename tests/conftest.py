"""Shared fixtures: real ``receiver serve`` processes on loopback with real SQLite files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.testing.pytest_plugin import ReceiverServer as Server
from receiver.testing.pytest_plugin import free_port, new_whsec, write_config

__all__ = [
    "Server",
    "ServerFactory",
    "free_port",
    "new_whsec",
    "run_cli",
    "running_server",
    "write_config",
]


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m receiver ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


ServerFactory = Callable[..., Server]


@contextlib.contextmanager
def running_server(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    settings: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
) -> Iterator[Server]:
    """A started server for a module-scoped fixture; killed when the block ends."""
    workdir = tmp_path_factory.mktemp(name)
    server = Server(workdir, write_config(workdir, settings, providers)).start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with config overrides; every one is stopped at teardown."""
    started: list[Server] = []

    def start(
        settings: dict[str, Any] | None = None, providers: dict[str, dict[str, Any]] | None = None
    ) -> Server:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        server = Server(workdir, write_config(workdir, settings, providers))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop(signal.SIGKILL)


@pytest.fixture
def server(server_factory: ServerFactory) -> Server:
    """A fresh server with one ``standard`` provider named ``default``."""
    return server_factory()
