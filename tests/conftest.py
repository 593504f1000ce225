"""Shared fixtures: real ``receiver serve`` processes on loopback with real SQLite files."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.testing import SignedRequest

STARTUP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    directory: Path,
    settings: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A config file in ``directory``; default: one ``standard`` provider named ``default``."""
    top = {
        "database_url": "sqlite:///receiver.db",
        "session_secret": secrets.token_urlsafe(40),
        **(settings or {}),
    }
    if providers is None:
        providers = {"default": {"type": "standard", "secrets": [new_whsec()]}}
    lines = [f"{key} = {toml_value(value)}" for key, value in top.items()]
    for name, table in providers.items():
        lines.append(f"\n[providers.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path = directory / "receiver.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


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


@dataclass
class Server:
    """One real ``receiver serve`` process and the files it owns."""

    workdir: Path
    config_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "receiver.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def secret(self, provider: str = "default") -> str:
        return str(tomllib.loads(self.config_path.read_text())["providers"][provider]["secrets"][0])

    def start(self) -> Server:
        command = [sys.executable, "-m", "receiver", "serve", "--config", str(self.config_path)]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], cwd=self.workdir, stdout=log, stderr=log
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"receiver exited at start:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"receiver did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)
        code = self.process.returncode
        self.process = None
        return code

    def post(self, request: SignedRequest, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            request.method,
            self.base_url + request.path,
            content=request.body,
            headers=request.headers,
            **kwargs,
        )

    def staff_token(self, name: str, role: str = "viewer") -> str:
        result = run_cli("staff", "add", name, "--role", role, "--config", str(self.config_path))
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"})


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
