"""Shared fixtures: real ``receiver serve`` processes on loopback with real SQLite files.

When the session ends, every server log it produced is searched for secrets and full
phone numbers (tests/leak_scan.py); any found fails the run. A test that gives a server
a secret the config does not hold (a console password) names it with ``remember_secret``.
"""

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
from leak_scan import Leak, find_leaks, logs_under

from receiver.testing.pytest_plugin import ReceiverServer as Server
from receiver.testing.pytest_plugin import free_port, new_whsec, write_config

__all__ = [
    "Server",
    "ServerFactory",
    "free_port",
    "new_whsec",
    "remember_secret",
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


# --- the log scan ------------------------------------------------------------------

_REMEMBERED: set[str] = set()
_BASETEMP: list[Path] = []
_SCANNED: list[int] = []
_LEAKS: list[Leak] = []
MOST_LEAKS_SHOWN = 20


def remember_secret(secret: str) -> str:
    """Have the end-of-session log scan look for ``secret`` too; returns it."""
    _REMEMBERED.add(secret)
    return secret


@pytest.fixture(scope="session", autouse=True)
def _session_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where this session's servers keep their logs, for the scan at the end."""
    _BASETEMP.append(tmp_path_factory.getbasetemp())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any server log of the session holds a secret or a full number."""
    _SCANNED.append(sum(1 for base in _BASETEMP for _ in logs_under(base)))
    _LEAKS.extend(leak for base in _BASETEMP for leak in find_leaks(base, _REMEMBERED))
    if _LEAKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the log scan searched and found (printed before the final counts)."""
    if not _SCANNED:
        return
    terminalreporter.section("log scan", red=bool(_LEAKS), green=not _LEAKS)
    terminalreporter.write_line(
        f"{_SCANNED[0]} server log(s) searched for secrets and full phone numbers: "
        f"{len(_LEAKS)} found"
    )
    for leak in _LEAKS[:MOST_LEAKS_SHOWN]:
        terminalreporter.write_line(f"  {leak}", red=True)
