"""The console in a real headless Chromium (Debian's ``chromium``, installed by .ci/run)
driven by Playwright, against a real ``receiver serve`` fed by signed webhooks.

The run saves a screenshot of the message page under pytest's tmp dir and, when
``RECEIVER_SCREENSHOT_DIR`` is set, there too (docs/console-message.png is one).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import Server, write_config
from console_client import PASSWORD, new_number, set_password
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from receiver.testing import standard_report, standard_request


class Shop:
    """The module's server, its staff and one delivered message to a known number."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.admin_token = server.staff_token("browser-admin", "admin")
        self.viewer = "browser-viewer"
        server.staff_token(self.viewer, "viewer")
        assert set_password(server, self.viewer).returncode == 0
        self.number, self.typed = new_number()
        self.pmid = f"SM{uuid.uuid4().hex}"
        start = datetime.now(UTC) - timedelta(minutes=3)
        reports = [
            ("sent", start, f"evt-sent-{self.pmid}"),
            ("sent", start, f"evt-sent-{self.pmid}"),  # the provider redelivered it
            ("delivered", start + timedelta(seconds=4), f"evt-dlvrd-{self.pmid}"),
        ]
        for status, occurred_at, event_id in reports:
            report = standard_report(
                self.pmid,
                status,
                occurred_at=occurred_at,
                to=self.number,
                client_reference="order-8812",
            )
            answer = server.post(standard_request(server.secret(), report, event_id=event_id))
            assert answer.status_code == 200, answer.text

    def url(self, path: str) -> str:
        return self.server.base_url + path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    workdir = tmp_path_factory.mktemp("console-browser")
    server = Server(workdir, write_config(workdir, {"console_default_region": "PH"})).start()
    yield Shop(server)
    server.stop(signal.SIGKILL)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any console error (a CSP violation is one)."""
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    yield page
    assert errors == []


def log_in_with_token(page: Page, shop: Shop, path: str) -> None:
    page.goto(shop.url(path))
    assert re.search(r"/console/login\?next=", page.url)
    page.fill("input[name=token]", shop.admin_token)
    page.click("[data-test=login]")
    page.wait_for_url(shop.url(path))


def search(page: Page, typed: str) -> None:
    page.fill("[data-test=q]", typed)
    page.click("[data-test=search]")
    page.wait_for_selector("[data-test=results], [data-test=no-results]")


def save_screenshot(page: Page, tmp_path: Path) -> None:
    shot = tmp_path / "console-message.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("RECEIVER_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)


def test_log_in_search_by_local_number_open_the_timeline_log_out(
    page: Page, shop: Shop, tmp_path: Path
) -> None:
    log_in_with_token(page, shop, "/console/messages")
    search(page, shop.typed)  # "0917 123 4567": local, read with console_default_region
    rows = page.locator("[data-test=result]")
    assert rows.count() == 1
    assert rows.locator("[data-test=to]").inner_text() == shop.number  # admins see it all

    rows.locator("[data-test=open]").click()
    page.wait_for_url(re.compile(r"/console/messages/msg_[0-9A-Z]+$"))
    assert "Delivered" in page.locator("[data-test=status]").inner_text()
    timeline = page.locator("[data-test=timeline] tbody tr")
    assert timeline.count() == 2  # the redelivery is one row that counts two deliveries
    assert "2" in page.locator("[data-test=timeline]").inner_text()
    assert page.locator("[data-test=raw]").count() == 1  # admins see the raw report
    save_screenshot(page, tmp_path)

    page.click("[data-test=logout]")
    page.wait_for_url(re.compile(r"/console/login\?reason=out$"))
    assert "logged out" in page.locator("[data-test=notice]").inner_text()
    message_url = shop.url("/console/messages")
    page.goto(message_url)
    assert "/console/login?next=" in page.url


def test_a_viewer_sees_no_full_number_and_no_raw_report(page: Page, shop: Shop) -> None:
    page.goto(shop.url("/console/messages"))
    page.fill("input[name=name]", shop.viewer)
    page.fill("input[name=password]", PASSWORD)
    page.click("[data-test=login]")
    page.wait_for_url(shop.url("/console/messages"))
    search(page, shop.typed)
    masked = shop.number[:3] + "******" + shop.number[-4:]
    assert page.locator("[data-test=to]").inner_text() == masked
    national = shop.number[3:]
    assert national not in page.content()

    page.click("[data-test=open]")
    page.wait_for_url(re.compile(r"/console/messages/msg_"))
    assert page.locator("[data-test=recipient]").inner_text() == masked
    assert page.locator("[data-test=raw]").count() == 0
    assert page.locator("[data-test=reprocess]").count() == 0
    assert national not in page.content()


def test_a_form_post_without_the_csrf_token_is_refused(context: BrowserContext, shop: Shop) -> None:
    page = context.new_page()
    log_in_with_token(page, shop, "/console/messages")
    cookies = {c["name"]: c["value"] for c in context.cookies() if c["path"] == "/console"}
    assert cookies, context.cookies()
    with httpx.Client(base_url=shop.server.base_url, cookies=cookies) as client:
        assert client.get("/console/messages").status_code == 200  # the session is good
        for path in ("/console/logout", "/console/login"):
            answer = client.post(path, data={"token": shop.admin_token})
            assert answer.status_code == 403, path
            assert "form refused" in answer.text
    page.reload()
    assert page.url == shop.url("/console/messages")  # still logged in


def test_an_unauthenticated_visit_redirects_to_login(page: Page, shop: Shop) -> None:
    page.goto(shop.url("/console/messages/msg_01ANYTHING"))
    assert page.url == shop.url("/console/login?next=/console/messages/msg_01ANYTHING")
    assert page.locator("input[name=token]").is_visible()
    assert page.locator("[data-test=who]").count() == 0


def test_on_a_phone_the_results_fit_the_screen(browser: Browser, shop: Shop) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        log_in_with_token(page, shop, "/console/messages")
        search(page, shop.typed)
        assert not page.locator("table.records thead").is_visible()  # rows became cards
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        context.close()
