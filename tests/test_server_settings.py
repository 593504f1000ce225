"""The ``[server]`` table (HTTP edge limits): documented defaults, and bad values
refused at start with one line naming the file, the key and the problem."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import new_whsec, run_cli

from receiver.config import ServerSettings, load
from receiver.errors import ConfigError
from receiver.http.edge import FD_RESERVE, descriptor_budget

BASE = (
    'session_secret = "' + "s" * 40 + '"\n'
    f'[providers.default]\ntype = "standard"\nsecrets = ["{new_whsec()}"]\n'
)


def config_with(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "receiver.toml"
    path.write_text(BASE + "[server]\n" + server + "\n")
    return path


def test_the_documented_defaults() -> None:
    assert ServerSettings() == ServerSettings(
        max_header_bytes=65536,
        max_header_fields=100,
        header_timeout_seconds=10,
        keepalive_timeout_seconds=5,
        body_timeout_seconds=30,
        max_connections=None,
    )


def test_every_key_can_be_set(tmp_path: Path) -> None:
    path = config_with(
        tmp_path,
        "max_header_bytes = 16384\nmax_header_fields = 50\nheader_timeout_seconds = 2.5\n"
        "keepalive_timeout_seconds = 30\nbody_timeout_seconds = 60\nmax_connections = 500",
    )
    server = load(path).settings.server
    assert (server.max_header_bytes, server.max_header_fields) == (16384, 50)
    assert (server.header_timeout_seconds, server.body_timeout_seconds) == (2.5, 60)
    assert (server.keepalive_timeout_seconds, server.max_connections) == (30, 500)


@pytest.mark.parametrize(
    ("line", "key", "problem"),
    [
        ("max_header_bytes = 100", "server.max_header_bytes", "4096"),
        ("max_header_bytes = 99999999", "server.max_header_bytes", "1048576"),
        ("max_header_fields = 3", "server.max_header_fields", "16"),
        ("header_timeout_seconds = 0", "server.header_timeout_seconds", "greater than 0"),
        ("keepalive_timeout_seconds = 1.5", "server.keepalive_timeout_seconds", "integer"),
        ("body_timeout_seconds = -1", "server.body_timeout_seconds", "greater than 0"),
        ("max_connections = 0", "server.max_connections", "1"),
        ("max_header_bytes = '64k'", "server.max_header_bytes", "integer"),
        ("colour = 'blue'", "server.colour", "not a known key"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(
    tmp_path: Path, line: str, key: str, problem: str
) -> None:
    path = config_with(tmp_path, line)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value) == f"{path}: {key}: {caught.value.problem}"


def test_serve_exits_2_with_one_line_for_a_bad_server_key(tmp_path: Path) -> None:
    path = config_with(tmp_path, "header_timeout_seconds = 0")
    result = run_cli("serve", "--config", str(path), "--port", "1", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"receiver: {path}: server.header_timeout_seconds: ")


def test_the_connection_cap_stays_within_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap, backlog = descriptor_budget(None)
    assert cap > 0 and backlog > 0
    assert cap + 2 * backlog + FD_RESERVE <= soft
    assert descriptor_budget(10) == (10, backlog)
    assert descriptor_budget(cap + 1_000_000)[0] == cap  # clamped, with a warning


def test_serve_refuses_a_descriptor_limit_too_low_to_serve(tmp_path: Path) -> None:
    path = config_with(tmp_path, "")
    result = subprocess.run(
        [sys.executable, "-m", "receiver", "serve", "--config", str(path), "--port", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (50, 50)),
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith("receiver: RLIMIT_NOFILE is 50: too low")
