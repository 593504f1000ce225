"""Helpers for console tests against a real ``receiver serve``: an httpx client that logs
in through the forms, passwords set with the real CLI, reports posted as a provider
would."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from typing import Any

import httpx
from conftest import Server, remember_secret

from receiver.testing import standard_report, standard_request

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match[1]


def set_password(
    server: Server, name: str, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    """``receiver staff passwd NAME`` with the password on stdin (not a TTY)."""
    remember_secret(password)  # the end-of-session log scan looks for it
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver",
            "staff",
            "passwd",
            name,
            "--config",
            str(server.config_path),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def new_number() -> tuple[str, str]:
    """A fresh Philippine mobile number: (E.164, as typed locally: "0917 123 4567")."""
    digits = f"{secrets.randbelow(10**7):07d}"
    return f"+63917{digits}", f"0917 {digits[:3]} {digits[3:]}"


def post_report(server: Server, message_id: str, status: str, **fields: Any) -> None:
    request = standard_request(server.secret(), standard_report(message_id, status, **fields))
    answer = server.post(request)
    assert answer.status_code == 200, answer.text


class Console:
    """One browser-like session (its own cookie jar) on a server's console."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, follow_redirects=False)

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.http.post(path, data=data)

    def csrf(self, path: str = "/console/login") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    def login(
        self,
        *,
        token: str = "",
        name: str = "",
        password: str = "",
        next_path: str = "",
        expect: int = 303,
    ) -> httpx.Response:
        data = {"csrf_token": self.csrf(), "token": token, "name": name, "password": password}
        if next_path:
            data["next"] = next_path
        answer = self.post("/console/login", data)
        assert answer.status_code == expect, answer.text
        return answer

    def logout(self) -> httpx.Response:
        return self.post("/console/logout", {"csrf_token": self.csrf("/console/messages")})
