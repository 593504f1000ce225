"""The console's pure helpers: where ``next`` may send a member, and status badges."""

from __future__ import annotations

import pytest

from receiver.console.web import safe_next, status_tone


@pytest.mark.parametrize(
    "value",
    ["/console/", "/console", "/console/messages?q=0917+123", "/console/messages/msg_01X"],
)
def test_safe_next_keeps_console_paths(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://evil.example/console/",
        "//evil.example/console/",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/console\\..\\x",
        "/console/../metrics",
        "/console/%2E%2E/metrics",
        "/console/./login",
        "/consoles",
        "/v1/messages",
        "/console/login",
        "/console/login?next=https://evil.example",
        "/console/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "console/",
    ],
)
def test_safe_next_sends_anything_else_home(value: str | None) -> None:
    assert safe_next(value) == "/console/"


@pytest.mark.parametrize(
    ("status", "tone"),
    [
        ("delivered", "tone-good"),
        ("failed", "tone-bad"),
        ("undelivered", "tone-bad"),
        ("expired", "tone-bad"),
        ("rejected", "tone-bad"),
        ("queued", "tone-wait"),
        ("sent", "tone-wait"),
        ("buffered", "tone-wait"),
        ("unknown", "tone-unknown"),
        (None, "tone-unknown"),
        ("no-such-word", "tone-unknown"),
    ],
)
def test_status_tone(status: str | None, tone: str) -> None:
    assert status_tone(status) == tone
