"""Console access against a real ``receiver serve``: login (token and password), the
session cookie, CSRF, security headers, the idle timeout, roles and phone masking, the
search page and ``receiver staff passwd``.

One server serves most of the module; every test makes its own staff members, numbers
and provider message ids, so tests do not see each other's data.
"""

from __future__ import annotations

import base64
import json
import math
import os
import pty
import re
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import Server, ServerFactory, run_cli, stored_rows, unique, write_config
from console_client import PASSWORD, Console, csrf_of, new_number, post_report, set_password

from receiver.console.middleware import CONTENT_SECURITY_POLICY
from receiver.console.passwords import PER_ADDRESS_BURST, PER_ADDRESS_PER_SECOND

pytestmark = pytest.mark.long_running

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
PAGES = ["/console/", "/console/messages", "/console/messages?q=0917", "/console/messages/msg_x"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("console-access")
    config = write_config(workdir, {"console_default_region": "PH"})
    server = Server(workdir, config).start()
    yield server
    server.stop(signal.SIGKILL)


def member(server: Server, role: str) -> tuple[str, str]:
    """A new staff member of ``role``: (name, token)."""
    name = unique(role)
    return name, server.staff_token(name, role)


def logged_in(server: Server, role: str) -> Console:
    _, token = member(server, role)
    console = Console(server)
    console.login(token=token)
    return console


def cookie_header(answer: httpx.Response) -> str:
    values = [v for v in answer.headers.get_list("set-cookie") if v.startswith("receiver_console=")]
    assert len(values) == 1, answer.headers
    return values[0]


def session_payload(answer: httpx.Response) -> dict[str, object]:
    value = cookie_header(answer).split(";")[0].split("=", 1)[1]
    data: dict[str, object] = json.loads(base64.b64decode(value.split(".")[0]))
    return data


def assert_login_redirect(
    answer: httpx.Response, next_path: str | None = None
) -> dict[str, list[str]]:
    assert answer.status_code == 303, answer.text
    target = urlsplit(answer.headers["location"])
    assert target.path == "/console/login"
    query = parse_qs(target.query)
    if next_path is not None:
        assert query["next"] == [next_path]
    return query


# --- no page without login -------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_an_unauthenticated_visit_redirects_to_login(server: Server, path: str) -> None:
    with Console(server) as console:
        answer = console.get(path)
        assert_login_redirect(answer, path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value


def test_after_login_the_member_comes_back_to_next(server: Server) -> None:
    _, token = member(server, "viewer")
    with Console(server) as console:
        redirect = console.get("/console/messages?q=0917")
        next_path = parse_qs(urlsplit(redirect.headers["location"]).query)["next"][0]
        answer = console.login(token=token, next_path=next_path)
        assert answer.headers["location"] == "/console/messages?q=0917"
        assert console.get("/console/messages").status_code == 200


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example/console/",
        "/\\evil.example",
        "/other",
        "/console/../v1/messages",
        "/console/%2e%2e/healthz",
        "/console/login?next=/console/",
        "javascript:alert(1)",
    ],
)
def test_next_goes_only_to_console_paths_on_this_site(server: Server, next_path: str) -> None:
    _, token = member(server, "viewer")
    with Console(server) as console:
        assert console.login(token=token, next_path=next_path).headers["location"] == "/console/"


def test_static_files_need_no_login_and_carry_the_headers(server: Server) -> None:
    answer = httpx.get(server.base_url + "/console/static/console.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value
    assert "set-cookie" not in answer.headers


# --- login and the session cookie --------------------------------------------------


def test_the_session_cookie_is_scoped_httponly_lax_and_holds_no_token(server: Server) -> None:
    _, token = member(server, "viewer")
    with Console(server) as console:
        answer = console.login(token=token)
        flags = [part.strip().lower() for part in cookie_header(answer).split(";")[1:]]
        assert "path=/console" in flags
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "secure" not in flags  # plain http on loopback
        assert not any(flag.startswith(("max-age", "expires")) for flag in flags)
        payload = session_payload(answer)
        assert set(payload) == {"staff", "since", "seen", "csrf"}
        assert str(payload["staff"]).startswith("stf_")
        assert token not in cookie_header(answer)


def test_the_login_form_replaces_the_session(server: Server) -> None:
    """Nothing from before login survives it: the CSRF token is new (session fixation)."""
    _, token = member(server, "viewer")
    with Console(server) as console:
        before = console.csrf()
        console.login(token=token)
        assert console.csrf("/console/messages") != before


def test_the_cookie_is_secure_when_the_public_url_is_https(server_factory: ServerFactory) -> None:
    server = server_factory({"public_base_url": "https://receiver.example"})
    answer = httpx.get(server.base_url + "/console/login")
    flags = [part.strip().lower() for part in cookie_header(answer).split(";")[1:]]
    assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"token": "rcv_not-a-real-token"}, 403),
        ({"name": "nobody-at-all", "password": PASSWORD}, 403),
        ({"name": "someone"}, 400),
        ({"password": PASSWORD}, 400),
        ({}, 400),
    ],
)
def test_a_failed_login_starts_no_session(
    server: Server, fields: dict[str, str], status: int
) -> None:
    with Console(server) as console:
        answer = console.login(**fields, expect=status)
        assert answer.headers["content-type"].startswith("text/html")
        assert 'data-test="login-error"' in answer.text
        assert_login_redirect(console.get("/console/messages"))


def test_a_revoked_member_cannot_log_in(server: Server) -> None:
    name, token = member(server, "viewer")
    assert set_password(server, name).returncode == 0
    assert run_cli("staff", "revoke", name, "--config", str(server.config_path)).returncode == 0
    with Console(server) as console:
        console.login(token=token, expect=403)
        console.login(name=name, password=PASSWORD, expect=403)


def test_revoking_ends_an_existing_session_on_the_next_request(server: Server) -> None:
    name, token = member(server, "admin")
    with Console(server) as console:
        console.login(token=token)
        assert console.get("/console/messages").status_code == 200
        assert run_cli("staff", "revoke", name, "--config", str(server.config_path)).returncode == 0
        query = assert_login_redirect(console.get("/console/messages"))
        assert query["reason"] == ["ended"]
        assert_login_redirect(console.get("/console/messages"))  # and it stays ended


def test_logout_ends_the_session_and_a_copied_cookie(server: Server) -> None:
    _, token = member(server, "viewer")
    with Console(server) as console, Console(server) as thief:
        console.login(token=token)
        thief.http.cookies = httpx.Cookies(console.http.cookies)
        assert thief.get("/console/messages").status_code == 200
        answer = console.logout()
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/login?reason=out"
        assert "01 jan 1970" in cookie_header(answer).lower()  # the cookie is cleared
        assert_login_redirect(console.get("/console/messages"))
        assert_login_redirect(thief.get("/console/messages"))
        assert "You are logged out." in console.get("/console/login?reason=out").text


def test_a_session_idle_too_long_expires(server_factory: ServerFactory) -> None:
    # 3 s, not 1: the fresh login at the end must reach its next page within the
    # timeout on a loaded machine too; idling 4.5 s is always too long.
    server = server_factory({"console_idle_timeout_seconds": 3})
    _, token = member(server, "viewer")
    with Console(server) as console:
        console.login(token=token)
        time.sleep(4.5)
        query = assert_login_redirect(console.get("/console/messages"), "/console/messages")
        assert query["reason"] == ["expired"]
        assert "Your session expired" in console.get("/console/login?reason=expired").text
        console.login(token=token)
        assert console.get("/console/messages").status_code == 200


# --- passwords ---------------------------------------------------------------------


def test_password_login_with_name_and_password(server: Server) -> None:
    name, _ = member(server, "sender")
    result = set_password(server, name)
    assert result.returncode == 0, result.stderr
    assert "password set" in result.stdout
    with Console(server) as console:
        console.login(name=name, password="wrong " + PASSWORD, expect=403)
        console.login(name=name, password=PASSWORD)
        assert 'data-test="who"' in console.get("/console/messages").text


def test_the_password_is_stored_as_scrypt_with_salt_and_parameters(server: Server) -> None:
    first, _ = member(server, "viewer")
    second, _ = member(server, "viewer")
    assert set_password(server, first).returncode == 0
    assert set_password(server, second).returncode == 0
    sql = "SELECT name, password_hash FROM staff WHERE name IN (?, ?)"
    rows = {row["name"]: row["password_hash"] for row in stored_rows(server, sql, (first, second))}
    for stored in rows.values():
        scheme, params, salt, digest = stored.split("$")
        assert (scheme, params) == ("scrypt", "n=32768,r=8,p=1")
        assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
        assert PASSWORD not in stored
    assert rows[first] != rows[second]  # same password, different salt


def test_a_member_without_a_password_cannot_use_password_login(server: Server) -> None:
    name, _ = member(server, "viewer")
    with Console(server) as console:
        console.login(name=name, password=PASSWORD, expect=403)


def test_a_new_password_ends_the_members_sessions(server: Server) -> None:
    name, _ = member(server, "viewer")
    assert set_password(server, name).returncode == 0
    with Console(server) as console:
        console.login(name=name, password=PASSWORD)
        assert console.get("/console/messages").status_code == 200
        assert set_password(server, name, "another " + PASSWORD).returncode == 0
        assert_login_redirect(console.get("/console/messages"))
        console.login(name=name, password=PASSWORD, expect=403)
        console.login(name=name, password="another " + PASSWORD)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 10 characters"),
        ("short", "at least 10 characters"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_passwd_refuses_a_bad_password(server: Server, password: str, problem: str) -> None:
    name, _ = member(server, "viewer")
    result = set_password(server, name, password)
    assert result.returncode == 2
    assert problem in result.stderr


def test_passwd_refuses_an_unknown_or_revoked_member(server: Server) -> None:
    assert set_password(server, "nobody-" + uuid.uuid4().hex[:8]).returncode == 2
    name, _ = member(server, "viewer")
    assert run_cli("staff", "revoke", name, "--config", str(server.config_path)).returncode == 0
    result = set_password(server, name)
    assert result.returncode == 2
    assert "no active staff" in result.stderr


def test_passwd_keeps_spaces_but_not_the_line_end(server: Server) -> None:
    name, _ = member(server, "viewer")
    assert set_password(server, name, "  spaced out password  \r").returncode == 0
    with Console(server) as console:
        console.login(name=name, password="spaced out password", expect=403)
        console.login(name=name, password="  spaced out password  ")


# --- CSRF ----------------------------------------------------------------------------


def test_a_login_post_without_the_csrf_token_is_refused(server: Server) -> None:
    _, token = member(server, "viewer")
    with Console(server) as console:
        console.csrf()  # a session with a token exists, but the form does not send it
        answer = console.post("/console/login", {"token": token})
        assert answer.status_code == 403
        assert "form refused" in answer.text
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert_login_redirect(console.get("/console/messages"))


def test_a_csrf_token_from_another_session_is_refused(server: Server) -> None:
    _, token = member(server, "viewer")
    with Console(server) as attacker, Console(server) as victim:
        stolen = attacker.csrf()
        victim.csrf()
        answer = victim.post("/console/login", {"csrf_token": stolen, "token": token})
        assert answer.status_code == 403


def test_logout_without_the_csrf_token_is_refused(server: Server) -> None:
    with logged_in(server, "viewer") as console:
        for data in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}):
            assert console.post("/console/logout", data).status_code == 403
        assert console.get("/console/messages").status_code == 200  # still logged in


# --- headers -------------------------------------------------------------------------


def test_every_console_answer_has_the_security_headers(server: Server) -> None:
    with logged_in(server, "viewer") as console:
        answers = [
            console.get("/console/login"),
            console.get("/console/messages"),
            console.get("/console/messages?q=msg_nothing"),
            console.get("/console/no-such-page"),
            console.post("/console/logout", {}),
        ]
    assert [a.status_code for a in answers] == [303, 200, 400, 404, 403]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value, (answer.url, name)
        assert answer.headers["cache-control"] == "no-store"
    assert answers[3].headers["content-type"].startswith("text/html")


def test_pages_have_no_inline_script_or_style(server: Server) -> None:
    with logged_in(server, "admin") as console:
        for path in ("/console/login", "/console/messages"):
            page = console.get(path).text
            assert "<script>" not in page and " style=" not in page and "<style" not in page


# --- roles and masking ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "masked"), [("viewer", True), ("sender", False), ("admin", False)]
)
def test_phone_numbers_are_masked_for_viewers(server: Server, role: str, masked: bool) -> None:
    number, typed = new_number()
    post_report(server, unique("pmid"), "delivered", to=number)
    with logged_in(server, role) as console:
        page = console.get("/console/messages", params={"q": typed})
    assert page.status_code == 200
    shown = number[:3] + "*" * 6 + number[-4:]
    if masked:
        assert number not in page.text and number[3:] not in page.text
        assert shown in page.text
    else:
        assert number in page.text and shown not in page.text


# --- search ----------------------------------------------------------------------------


def result_ids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [line.split(">")[1].split("<")[0] for line in page.text.split('data-test="open"')[1:]]


@pytest.mark.parametrize("form", ["{local}", "{intl}", "{dashes}", "{paren}", "{bare}"])
def test_search_by_a_number_typed_any_usual_way(server: Server, form: str) -> None:
    number, _ = new_number()
    local = "0" + number[3:]
    typed = form.format(
        local=f"{local[:4]} {local[4:7]} {local[7:]}",
        intl=f"+63 {number[3:6]} {number[6:9]} {number[9:]}",
        dashes=f"{local[:4]}-{local[4:7]}-{local[7:]}",
        paren=f"+63 ({number[3:6]}) {number[6:9]}-{number[9:]}",
        bare=number,
    )
    post_report(server, unique("pmid"), "sent", to=number)
    with logged_in(server, "admin") as console:
        for params in ({"q": typed}, {"to": typed}):
            page = console.get("/console/messages", params=params)
            assert len(result_ids(page)) == 1, (params, page.text)


def test_search_by_ids_and_client_reference(server: Server) -> None:
    number, _ = new_number()
    pmid, ref = unique("pmid"), unique("ref")
    post_report(server, pmid, "delivered", to=number, client_reference=ref)
    with logged_in(server, "viewer") as console:
        (message_id,) = result_ids(console.get("/console/messages", params={"q": pmid}))
        assert result_ids(console.get("/console/messages", params={"q": ref})) == [message_id]
        assert result_ids(console.get("/console/messages", params={"client_reference": ref})) == [
            message_id
        ]
        answer = console.get("/console/messages", params={"q": message_id})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/console/messages/{message_id}"
        missing = console.get("/console/messages", params={"q": "msg_01NOSUCHMESSAGE"})
        assert missing.status_code == 400
        assert "No message has the id" in missing.text


def test_a_phone_shaped_provider_id_is_found_as_a_provider_id(server: Server) -> None:
    pmid = "0917" + str(uuid.uuid4().int)[:7]
    post_report(server, pmid, "sent", to=new_number()[0])
    with logged_in(server, "viewer") as console:
        page = console.get("/console/messages", params={"q": pmid})
        assert len(result_ids(page)) == 1
        assert "provider message id" in page.text


def test_search_filters_by_status_provider_and_time(server: Server) -> None:
    number, typed = new_number()
    post_report(server, unique("pmid"), "delivered", to=number)
    post_report(server, unique("pmid"), "failed", to=number, error_code="30007")
    now = datetime.now(UTC)
    with logged_in(server, "viewer") as console:

        def count(**params: str) -> int:
            return len(result_ids(console.get("/console/messages", params={"to": typed, **params})))

        assert count() == 2
        assert count(status="failed") == 1
        assert count(provider="default") == 2
        assert count(provider="other") == 0
        assert count(since=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")) == 2
        assert count(until=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")) == 0
        for bad in ({"status": "lost"}, {"since": "yesterday"}, {"to": "12"}):
            page = console.get("/console/messages", params={"to": typed, **bad})
            assert page.status_code == 400
            assert 'data-test="search-error"' in page.text


def test_results_are_paginated_newest_first(server: Server) -> None:
    number, typed = new_number()
    pmids = [unique(f"page{i:02d}") for i in range(30)]
    for pmid in pmids:
        post_report(server, pmid, "sent", to=number)
    with logged_in(server, "viewer") as console:
        first = console.get("/console/messages", params={"q": typed})
        assert len(result_ids(first)) == 25
        next_url = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        second = console.get(next_url.replace("&amp;", "&"))
        assert len(result_ids(second)) == 5
        assert 'rel="next"' not in second.text
        assert len(set(result_ids(first) + result_ids(second))) == 30
        shown = re.findall(r"page[0-9]{2}-[0-9a-f]{10}", first.text + second.text)
        assert shown == list(reversed(pmids))  # newest first
        tampered = console.get("/console/messages", params={"q": typed, "cursor": "forged"})
        assert tampered.status_code == 400


def test_an_unknown_region_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"console_default_region": "XX"})
    result = run_cli("staff", "list", "--config", str(config))
    assert result.returncode == 2
    assert "console_default_region" in result.stderr


def test_the_login_page_has_a_csrf_field(server: Server) -> None:
    page = httpx.get(server.base_url + "/console/login")
    assert csrf_of(page.text)
    assert 'name="next" value="/console/"' in page.text


def test_password_guessing_is_limited_per_address(server_factory: ServerFactory) -> None:
    server = server_factory()
    name, token = member(server, "viewer")
    assert set_password(server, name).returncode == 0
    with Console(server) as console:
        csrf = console.csrf()
        started = time.monotonic()
        answers = [
            console.post(
                "/console/login", {"csrf_token": csrf, "name": name, "password": f"guess {i:04d}"}
            )
            for i in range(30)
        ]
        seconds = time.monotonic() - started
        codes = [answer.status_code for answer in answers]
        assert codes[:20] == [403] * 20  # the burst
        # then the sustained rate, however long the guesses took on this machine
        checked = PER_ADDRESS_BURST + math.ceil(PER_ADDRESS_PER_SECOND * seconds)
        assert codes.count(429) >= max(1, 30 - checked)
        refused = answers[codes.index(429)]
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many attempts" in refused.text
        # The right password is refused too, before any check. The bucket refills one
        # attempt every 3 s, so one may have come back since the last guess: a 303 here
        # is allowed only within the rate, and the next try (a fresh session, since a
        # login replaces the CSRF token) must be refused.
        right_password = []
        while 429 not in right_password and len(right_password) < 5:
            with Console(server) as fresh:
                right = {"csrf_token": fresh.csrf(), "name": name, "password": PASSWORD}
                right_password.append(fresh.post("/console/login", right).status_code)
        seconds = time.monotonic() - started
        assert right_password[-1] == 429, right_password
        assert set(right_password) <= {303, 429}, right_password
        granted = codes.count(403) + right_password.count(303)
        assert granted <= PER_ADDRESS_BURST + math.ceil(PER_ADDRESS_PER_SECOND * seconds)
        console.login(token=token)  # tokens are not limited


def passwd_on_a_terminal(server: Server, name: str, first: str, second: str) -> tuple[int, str]:
    """Run ``receiver staff passwd NAME`` on a pseudo-terminal, answering both prompts."""
    command = [sys.executable, "-m", "receiver", "staff", "passwd", name]
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty, so getpass uses it
        os.execv(sys.executable, [*command, "--config", str(server.config_path)])
    output = b""
    try:
        for answer in (first, second):
            while b": " not in output.rsplit(b"\n", 1)[-1]:
                output += os.read(fd, 1024)
            os.write(fd, answer.encode() + b"\n")
            output += os.read(fd, 1024)
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_passwd_on_a_terminal_asks_twice(server: Server) -> None:
    name, _ = member(server, "viewer")
    code, output = passwd_on_a_terminal(server, name, PASSWORD, "something else entirely")
    assert code == 2, output
    assert "differ" in output
    code, output = passwd_on_a_terminal(server, name, PASSWORD, PASSWORD)
    assert code == 0, output
    assert "Again: " in output and PASSWORD not in output  # never echoed
    with Console(server) as console:
        console.login(name=name, password=PASSWORD)
