"""A pytest plugin: a real receiver on a free loopback port, for integration tests.

Installed as the ``pytest11`` entry point ``receiver``, so the fixtures are there in
any project that has ``receiver`` installed (or load it with
``-p receiver.testing.pytest_plugin``). Fixtures (all function-scoped):

``receiver_server``
    A running ``receiver serve`` subprocess with a temporary config file and
    SQLite store: ``base_url``, ``secret(name)``, ``config_path``, ``db_path``,
    ``post(request)`` (an ``httpx.Response``), ``staff_token(name, role)`` and
    ``api(token)``. Stopped at teardown.
``receiver_providers``
    The ``[providers.*]`` tables of that config; override it to test other types.
    Default: one ``standard`` provider named ``default`` with a fresh secret.
``receiver_settings``
    Top-level config keys added to the defaults (e.g. ``public_base_url``).
``receiver_staff``
    An ``httpx.Client`` for the staff API with a fresh ``admin`` token.

The request builders are the ``receiver.testing`` functions (``standard_request``...).
See docs/testing.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.core.signatures.standard_webhooks import new_whsec
from receiver.testing.base import SignedRequest

__all__ = [
    "ReceiverServer",
    "free_port",
    "new_whsec",
    "receiver_providers",
    "receiver_server",
    "receiver_settings",
    "receiver_staff",
    "write_config",
]

STARTUP_SECONDS = 20.0
STOP_SECONDS = 20.0
_WORKER_STARTED = "Application startup complete"
"""uvicorn's line once a process's lifespan has started (each worker logs one)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):  # an inline table
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def write_config(
    directory: Path,
    settings: Mapping[str, Any] | None = None,
    providers: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``receiver.toml`` (mode 0600) in ``directory`` with a SQLite store beside it;
    default providers: one ``standard`` named ``default`` with a fresh secret."""
    if providers is None:
        providers = {"default": {"type": "standard", "secrets": [new_whsec()]}}
    top: dict[str, Any] = {
        "database_url": "sqlite:///receiver.db",  # beside the config file
        "session_secret": secrets.token_urlsafe(40),
        **(settings or {}),
    }
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for name, table in providers.items():
        lines.append(f"\n[providers.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    path = directory / "receiver.toml"
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


class ReceiverServer:
    """One real ``receiver serve`` process and the files it owns."""

    def __init__(
        self,
        workdir: Path,
        config_path: Path,
        *,
        preexec_fn: Callable[[], None] | None = None,
        workers: int = 1,
    ) -> None:
        """``preexec_fn`` runs in the child before ``receiver serve`` starts (e.g. to
        lower a resource limit with ``resource.setrlimit``); ``workers`` is ``serve
        --workers``."""
        self.workdir = workdir
        self.config_path = config_path
        self.preexec_fn = preexec_fn
        self.workers = workers
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "receiver.db"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr (JSON log lines)."""
        return self.workdir / "server.log"

    def secret(self, name: str = "default") -> str:
        """The first (signing) secret of provider ``name``."""
        config = tomllib.loads(self.config_path.read_text())
        return str(config["providers"][name]["secrets"][0])

    def start(self, attempts: int = 3, *, port: int | None = None) -> ReceiverServer:
        """Start on a free port (a port taken in between gets another try), or on
        ``port``: one the config already names, e.g. in ``public_base_url`` for a
        provider that is told where to post its reports."""
        if port is not None:
            self.port = port
            return self._start_once()
        for attempt in range(attempts):
            self.port = free_port()
            try:
                return self._start_once()
            except RuntimeError:
                if attempt == attempts - 1 or "address already in use" not in self._log_text():
                    raise
        raise AssertionError("unreachable")

    def _log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _start_once(self) -> ReceiverServer:
        command = [sys.executable, "-m", "receiver", "serve", "--config", str(self.config_path)]
        workers = ["--workers", str(self.workers)]
        logged_before = len(self._log_text())
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, our own arguments
                [*command, "--host", "127.0.0.1", "--port", str(self.port), *workers],
                cwd=self.workdir,
                stdout=log,
                stderr=log,
                preexec_fn=self.preexec_fn,
                start_new_session=True,  # stop() reaches the workers of --workers N too
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"receiver exited at start:\n{self._log_text()}")
            try:
                answered = httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200
                started = self._log_text()[logged_before:].count(_WORKER_STARTED)
                if answered and started >= self.workers:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"receiver did not start:\n{self._log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_SECONDS) -> int | None:
        """Stop the process (SIGTERM drains queued reports; SIGKILL reaches every
        worker process too); return its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def post(self, request: SignedRequest, **kwargs: Any) -> httpx.Response:
        """Send a request built by a ``receiver.testing`` builder."""
        return httpx.request(
            request.method,
            self.base_url + request.path,
            content=request.body,
            headers=request.headers,
            **kwargs,
        )

    def staff_token(self, name: str, role: str = "viewer") -> str:
        """A new token from ``receiver staff add NAME --role ROLE``."""
        command = [sys.executable, "-m", "receiver", "staff", "add", name, "--role", role]
        result = subprocess.run(  # noqa: S603 - our own CLI, our own arguments
            [*command, "--config", str(self.config_path)],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"receiver staff add failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def api(self, token: str) -> httpx.Client:
        """An ``httpx.Client`` for the staff API authenticated with ``token``."""
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def receiver_providers() -> dict[str, dict[str, Any]]:
    """The ``[providers.*]`` tables; override this fixture for other provider types."""
    return {"default": {"type": "standard", "secrets": [new_whsec()]}}


@pytest.fixture
def receiver_settings() -> dict[str, Any]:
    """Top-level config keys added to the defaults; override to change them."""
    return {}


@pytest.fixture
def receiver_server(
    tmp_path_factory: pytest.TempPathFactory,
    receiver_providers: dict[str, dict[str, Any]],
    receiver_settings: dict[str, Any],
) -> Iterator[ReceiverServer]:
    """A running receiver with a temporary config and SQLite store."""
    workdir = tmp_path_factory.mktemp("receiver")
    config = write_config(workdir, receiver_settings, receiver_providers)
    server = ReceiverServer(workdir, config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver_staff(receiver_server: ReceiverServer) -> Iterator[httpx.Client]:
    """A staff API client holding a fresh ``admin`` token."""
    token = receiver_server.staff_token(f"pytest-admin-{secrets.token_hex(4)}", "admin")
    with contextlib.closing(receiver_server.api(token)) as client:
        yield client
