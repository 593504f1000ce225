"""The console's overview page (``/console/``) against a real ``receiver serve``: counts by
status per provider for the last hour and day, and the most frequent failure reasons.

Each test starts its own server: the page counts everything in the store. A message's
place in the windows is moved by rewriting its ``updated_at`` in the SQLite file, as an
older message would have it; nothing waits on the clock.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Server, ServerFactory, new_whsec
from console_client import Console
from html_tree import Element, parse

from receiver.console.overview import STATUS_ORDER
from receiver.core.status import RANK, Status
from receiver.providers import explain_error
from receiver.store.base import to_text
from receiver.testing import standard_report, standard_request, twilio_report, twilio_request

AUTH_TOKEN = "9f3c2a7d51e84b0c96ad2f4e7b1c3d58"
PUBLIC_BASE_URL = "http://dlr.example.com"  # http: keeps the session cookie usable on loopback


def providers() -> dict[str, dict[str, Any]]:
    return {
        "default": {"type": "standard", "secrets": [new_whsec()]},
        "other": {"type": "standard", "secrets": [new_whsec()]},
        "twilio": {"type": "twilio", "secrets": [AUTH_TOKEN]},
    }


@pytest.fixture
def server(server_factory: ServerFactory) -> Server:
    return server_factory({"public_base_url": PUBLIC_BASE_URL}, providers())


def report(server: Server, status: str, provider: str = "default", **fields: Any) -> str:
    """Post one report of a new message; its provider message id."""
    pmid = f"ov-{uuid.uuid4().hex[:12]}"
    data = standard_report(pmid, status, **fields)
    answer = server.post(standard_request(server.secret(provider), data, provider=provider))
    assert answer.status_code == 200, answer.text
    return pmid


def twilio(server: Server, status: str, error_code: str | None = None) -> str:
    sid = "SM" + uuid.uuid4().hex
    params = twilio_report(sid, status, to="+15558675310", error_code=error_code)
    request = twilio_request(AUTH_TOKEN, params, public_base_url=PUBLIC_BASE_URL, provider="twilio")
    answer = server.post(request)
    assert answer.status_code == 200, answer.text
    return sid


def age(server: Server, pmid: str, by: timedelta) -> None:
    """Make the message look last updated ``by`` ago."""
    updated = to_text(datetime.now(UTC) - by)
    with sqlite3.connect(server.db_path) as db:
        changed = db.execute(
            "UPDATE messages SET updated_at = ? WHERE provider_message_id = ?", (updated, pmid)
        ).rowcount
    db.close()
    assert changed == 1


def overview(server: Server, role: str = "viewer") -> Element:
    with Console(server) as console:
        console.login(token=server.staff_token(f"{role}-{uuid.uuid4().hex[:8]}", role))
        answer = console.get("/console/")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def counts(page: Element, window: str) -> dict[str, dict[str, int]]:
    """{provider (or "total"): {status (or "none", "total"): count}} of one window."""
    table = page.find("table", data_test="counts", data_window=window)
    found: dict[str, dict[str, int]] = {}
    for row in table.find_all("tr", data_provider=None):
        cells = row.find_all("td", data_status=None)
        found[row.attrs["data-provider"]] = {c.attrs["data-status"]: int(c.text) for c in cells}
    return found


def nonzero(table: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {p: {s: n for s, n in row.items() if n} for p, row in table.items()}


@pytest.mark.sqlite_only("ages messages by writing the SQLite file")
def test_counts_by_status_per_provider_for_the_last_hour_and_day(server):
    report(server, "delivered")
    report(server, "delivered")
    report(server, "undelivered", error_code="E1")
    report(server, "that_is_not_a_status")  # known to no mapping: "no status"
    age(server, report(server, "sent"), timedelta(hours=3))
    age(server, report(server, "queued"), timedelta(days=2))  # outside both windows
    report(server, "failed", provider="other")
    age(server, report(server, "delivered", provider="other"), timedelta(hours=5))

    page = overview(server)

    hour, day = counts(page, "hour"), counts(page, "day")
    assert nonzero(hour) == {
        "default": {"delivered": 2, "undelivered": 1, "none": 1, "total": 4},
        "other": {"failed": 1, "total": 1},
        "twilio": {},  # configured, nothing yet: a row of zeros
        "total": {"delivered": 2, "undelivered": 1, "failed": 1, "none": 1, "total": 5},
    }
    assert nonzero(day) == {
        "default": {"delivered": 2, "undelivered": 1, "sent": 1, "none": 1, "total": 5},
        "other": {"failed": 1, "delivered": 1, "total": 2},
        "twilio": {},
        "total": {"delivered": 3, "undelivered": 1, "sent": 1, "failed": 1, "none": 1, "total": 7},
    }
    # Every status is a column, in rank order, with words and a symbol beside the colour.
    header = page.find("table", data_test="counts", data_window="hour").find("thead")
    columns = [th.attrs["data-status"] for th in header.find_all("th", data_status=None)]
    assert columns == [*(s.value for s in STATUS_ORDER), "none"]
    delivered = header.find("th", data_status="delivered").find_all("span")[0]
    assert "tone-good" in delivered.classes() and "\u2713" in delivered.text
    assert "updated_at" in page.find(data_test="window-basis").text


@pytest.mark.sqlite_only("ages messages by writing the SQLite file")
def test_failure_reasons_most_frequent_first_explained_and_searchable(server):
    for _ in range(3):
        twilio(server, "undelivered", "30007")
    twilio(server, "undelivered", "30003")
    for _ in range(2):
        report(server, "undelivered", error_code="E9", error_message="Carrier said no")
    report(server, "failed")  # no code at all
    report(server, "delivered")  # not a failure
    for _ in range(5):  # frequent, but two days ago
        age(server, twilio(server, "failed", "30005"), timedelta(days=2))

    page = overview(server)

    rows = page.find("table", data_test="failure-reasons").find("tbody").find_all("tr")
    seen = [
        (
            int(row.find(data_test="count").text),
            row.find_all("td")[1].text,
            row.find_all("td")[2].text,
            row.find_all("td")[3].text,
            row.find(data_test="explanation").text,
        )
        for row in rows
    ]
    assert seen == [
        (3, "twilio", "\u2717 undelivered", "Twilio 30007", explain_error("twilio", "30007")),
        (2, "default", "\u2717 undelivered", "code E9", "Carrier said no"),
        (1, "default", "\u2717 failed", "none", "no error code given"),
        (1, "twilio", "\u2717 undelivered", "Twilio 30003", explain_error("twilio", "30003")),
    ]
    link = rows[0].find("a")
    assert link.attrs["href"] == "/console/messages?provider=twilio&status=undelivered"
    with Console(server) as console:
        console.login(token=server.staff_token("follower", "viewer"))
        listed = console.get(link.attrs["href"])
    assert listed.status_code == 200
    # The search is not windowed, but the old 30005 ones failed rather than undelivered.
    assert listed.text.count('data-test="open"') == 4


def test_only_the_ten_most_frequent_reasons_are_listed(server):
    for index in range(11):
        for _ in range(2 if index == 10 else 1):
            report(server, "undelivered", error_code=f"C{index:02d}")
    rows = (
        overview(server)
        .find("table", data_test="failure-reasons")
        .find_all("tr", data_test="reason")
    )
    assert len(rows) == 10
    assert rows[0].find_all("td")[3].text == "code C10"  # the most frequent first


def test_an_empty_store_shows_zeros_and_no_failures(server):
    page = overview(server, "admin")
    for window in ("hour", "day"):
        table = counts(page, window)
        assert set(table) == {"default", "other", "twilio", "total"}
        assert all(n == 0 for row in table.values() for n in row.values())
    assert page.has(data_test="no-failures")
    assert not page.has(data_test="failure-reasons")


def test_the_overview_needs_a_login(server):
    with Console(server) as console:
        answer = console.get("/console/")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")


def test_status_columns_are_every_status_in_rank_order():
    assert set(STATUS_ORDER) == set(Status)
    ranks = [RANK[s] for s in STATUS_ORDER]
    assert ranks == sorted(ranks)
