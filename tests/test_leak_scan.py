"""The end-of-session log scan (tests/leak_scan.py) finds what it must and nothing else."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import new_whsec, write_config
from leak_scan import find_leaks

from receiver.auth import new_token

CLEAN = [
    '{"time": "2026-11-23T09:59:58.123+00:00", "level": "info", "logger": "receiver.access", '
    '"message": "GET /v1/messages 200", "request_id": "67264a065a40fce002692a6b67ed7ffe", '
    '"status": 200, "duration_ms": 1.25, "client": "127.0.0.1"}',
    '{"message": "the provider rejected a message: BARRED Destination 63********69 is barred"}',
    '{"message": "lookup to=+63********67", "path": "/v1/messages"}',
    "INFO:     Uvicorn running on http://127.0.0.1:54321 (Press CTRL+C to quit)",
]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder outside the session's temporary directory: the leaks planted here must
    not fail the run when the real scan reads the session's logs at the end."""
    with tempfile.TemporaryDirectory(prefix="leak-scan-") as directory:
        yield Path(directory)


def server_dir(scratch: Path, lines: list[str], name: str = "server.log") -> Path:
    """A folder as ReceiverServer leaves it: a config and a log."""
    write_config(scratch, providers={"default": {"type": "standard", "secrets": [new_whsec()]}})
    (scratch / name).write_text("\n".join(lines) + "\n")
    return scratch


def test_clean_logs_have_no_leaks(scratch: Path) -> None:
    assert find_leaks(server_dir(scratch, CLEAN)) == []


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Traceback: cannot deliver to +639171234567", "full phone number"),
        ('{"message": "Destination 639171234569 is barred"}', "full phone number"),
        ("Authorization: Bearer " + new_token(), "staff token"),
        ("secret " + new_whsec() + " from another config", "webhook secret"),
    ],
    ids=["e164-number", "bare-number", "staff-token", "webhook-secret"],
)
def test_numbers_and_tokens_are_found_in_any_line(scratch: Path, line: str, kind: str) -> None:
    [leak] = find_leaks(server_dir(scratch, [*CLEAN, line]))
    assert leak.kind == kind
    assert leak.path == scratch / "server.log"
    assert leak.line == len(CLEAN) + 1
    assert "639171234567" not in leak.excerpt and "639171234569" not in leak.excerpt
    assert "rcv_" not in leak.excerpt.replace("[SECRET]", "")


def test_the_configs_own_secrets_are_found_and_not_shown(scratch: Path) -> None:
    write_config(
        scratch,
        {"session_secret": "session-" + "s" * 40},
        {"acme": {"type": "infobip", "secrets": ["dlr-user:the-dlr-password"]}},
    )
    lines = [
        json.dumps({"message": "session-" + "s" * 40}),
        json.dumps({"message": "basic the-dlr-password"}),
    ]
    (scratch / "server.log").write_text("\n".join(lines))
    leaks = find_leaks(scratch)
    assert [(leak.line, leak.kind) for leak in leaks] == [
        (1, "configured secret or password"),
        (2, "configured secret or password"),
    ]
    assert all("[SECRET]" in leak.excerpt and "s" * 40 not in leak.excerpt for leak in leaks)


def test_a_remembered_password_and_a_hand_started_servers_output_are_searched(
    scratch: Path,
) -> None:
    cwd = scratch / "fresh"
    cwd.mkdir()
    write_config(cwd)
    (scratch / "fresh-8000.err").write_text("login with correct horse battery staple\n")
    [leak] = find_leaks(scratch, ["correct horse battery staple"])
    assert (leak.path.name, leak.kind) == ("fresh-8000.err", "configured secret or password")
    assert find_leaks(scratch) == []  # not a secret unless someone said so
