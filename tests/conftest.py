"""Shared fixtures: real ``receiver serve`` processes on loopback with real SQLite files."""

from __future__ import annotations

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

__all__ = ["Server", "ServerFactory", "free_port", "new_whsec", "run_cli", "write_config"]


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
