"""The Health page and the message page on phones (issue 15), in a real headless
Chromium (Debian's ``chromium``) against a real ``receiver serve`` fed by signed
webhooks: the chart is SVG drawn by the server (no script: the CSP stays strict), every
number links to its search, nothing scrolls sideways at 360 and 320 px, and one time
rule holds on every page.

Saves docs/console-health.png's source in pytest's tmp dir and, with
``RECEIVER_SCREENSHOT_DIR`` set, there too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Server, new_whsec, write_config
from playwright.sync_api import Browser, ConsoleMessage, Page

from receiver.testing import (
    sinch_recipient_report,
    sinch_request,
    standard_report,
    standard_request,
)

SINCH_CREDENTIALS = "sinch-dlr:7Rk2pQv9ZmW4"
BATCH = "01W4FFL35P4NC4K35SMSBATCH9"
LONG_ERROR = (
    "Subscriber absent: the handset was switched off or out of coverage for the whole"
    " validity period of the message"
)


class Site:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.token = server.staff_token("health-admin", "admin")
        now = datetime.now(UTC)
        reports = []
        for n in range(6):  # acme to the Philippines: 4 delivered via 515-02, 2 absent
            pmid = f"acme-ph-{n}"
            reports.append(standard_report(pmid, "sent", occurred_at=now, to=f"+63917123450{n}"))
            if n < 4:
                reports.append(
                    standard_report(
                        pmid,
                        "delivered",
                        occurred_at=now + timedelta(seconds=3 + n),
                        network="515-02",
                    )
                )
            else:
                reports.append(
                    standard_report(
                        pmid,
                        "undelivered",
                        occurred_at=now + timedelta(seconds=30),
                        network="515-03",
                        error_code="27",
                        error_message=LONG_ERROR,
                    )
                )
        for report in reports:
            assert server.post(standard_request(server.secret(), report)).status_code == 200
        for recipient in ("639171230001", "447700900123"):
            payload = sinch_recipient_report(
                batch_id=BATCH, recipient=recipient, status="Delivered", code=0
            )
            answer = server.post(sinch_request(payload, credentials=SINCH_CREDENTIALS))
            assert answer.status_code == 200, answer.text

    def url(self, path: str) -> str:
        return self.server.base_url + path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("console-health")
    providers = {
        "default": {"type": "standard", "secrets": [new_whsec()]},
        "sinch": {"type": "sinch", "auth": "basic", "secrets": [SINCH_CREDENTIALS]},
    }
    server = Server(
        workdir, write_config(workdir, {"console_default_region": "PH"}, providers=providers)
    ).start()
    yield Site(server)
    server.stop(signal.SIGKILL)


def open_page(browser: Browser, site: Site, path: str, width: int) -> Page:
    """A logged-in page at ``width`` px that fails the test on any console error (a CSP
    violation is one)."""
    context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=width < 600)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.goto(site.url(path))
    page.fill("input[name=token]", site.token)
    page.click("[data-test=login]")
    page.wait_for_url(re.compile(re.escape(site.url(path.split("?")[0]))))
    page.set_default_timeout(10_000)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def no_sideways_scroll(page: Page, width: int) -> bool:
    """Nothing is wider than the phone's screen (compared with the screen's width, not
    ``innerWidth``: a mobile browser widens its layout viewport to fit wide content)."""
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {width}"))


def done(page: Page) -> None:
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def open_message(page: Page, site: Site, pmid: str) -> None:
    page.goto(site.url(f"/console/messages?provider_message_id={pmid}"))
    page.click("[data-test=open]")
    page.wait_for_url(re.compile(r"/console/messages/msg_"))


def test_health_page_chart_tables_and_links(browser: Browser, site: Site, tmp_path: Path) -> None:
    page = open_page(browser, site, "/console/health", 1280)
    chart = page.locator("[data-test=rate-chart]")
    assert chart.evaluate("el => el.tagName") == "svg"
    assert page.locator("[data-test=series][data-provider=default] circle").count() >= 1
    assert page.locator("script").count() == 0  # drawn by the server
    rows = page.locator("[data-test=place]")
    # worst first: 515-03 (0 %), then unknown (the Sinch messages, 100 %) and 515-02 (100 %)
    assert rows.first.get_attribute("data-network") == "515-03"
    assert rows.first.locator("[data-test=rate]").inner_text() == "0.0%"
    ph = page.locator("[data-test=place][data-country=PH][data-network='515-02']")
    assert ph.locator("[data-test=messages]").inner_text() == "4"
    latency = page.locator("[data-test=latency] tr[data-provider=default]")
    assert "66.7%" in latency.inner_text()  # 4 of 6 finished were delivered
    # Each number opens the search that finds exactly the messages it counts.
    link = ph.locator("[data-test=messages]").get_attribute("href")
    assert link is not None
    query = parse_qs(urlsplit(link).query)
    assert (query["country"], query["network"]) == (["PH"], ["515-02"])
    ph.locator("[data-test=messages]").click()
    page.wait_for_selector("[data-test=results]")
    assert page.locator("[data-test=result]").count() == 4
    page.go_back()
    failed = page.locator("[data-test=place][data-network='515-03'] [data-test=count-link]")
    assert failed.inner_text() == "2 undelivered"
    failed.click()
    page.wait_for_selector("[data-test=results]")
    assert page.locator("[data-test=result]").count() == 2
    page.goto(site.url("/console/health"))
    shot = tmp_path / "console-health.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("RECEIVER_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)
    done(page)


@pytest.mark.parametrize("width", [360, 320])
def test_health_page_fits_a_phone(browser: Browser, site: Site, width: int) -> None:
    page = open_page(browser, site, "/console/health", width)
    assert no_sideways_scroll(page, width)
    box = page.locator("[data-test=rate-chart]").bounding_box()
    assert box is not None and box["width"] <= width
    done(page)


@pytest.mark.parametrize("width", [360, 320])
def test_message_page_fits_a_phone(browser: Browser, site: Site, width: int) -> None:
    page = open_page(browser, site, "/console/messages", width)
    open_message(page, site, "acme-ph-5")
    assert no_sideways_scroll(page, width)
    # The masked number never wraps inside itself: one line box.
    recipient = page.locator("[data-test=recipient] .phone")
    assert recipient.evaluate("el => el.getClientRects().length") == 1
    # Timeline cards: every part of a cell sits right of its label, none under it.
    misplaced = page.evaluate(
        """() => [...document.querySelectorAll('table.timeline td')].flatMap(td => {
            const left = td.getBoundingClientRect().left;
            const label = parseFloat(getComputedStyle(td, '::before').width);
            return [...td.querySelectorAll('*')]
              .filter(el => el.getClientRects().length)
              .filter(el => el.getBoundingClientRect().left < left + label)
              .map(el => td.dataset.label + ': ' + el.textContent.trim().slice(0, 40));
        })"""
    )
    assert misplaced == []
    # No empty band above the facts card's heading.
    gap = page.evaluate(
        """() => { const card = document.querySelector('[data-test=facts]').closest('.card');
        const top = card.getBoundingClientRect().top;
        return card.querySelector('h2').getBoundingClientRect().top - top; }"""
    )
    assert gap <= 18  # the card's padding (1rem) and a border
    done(page)


def test_one_time_rule_and_no_space_before_the_colon(browser: Browser, site: Site) -> None:
    page = open_page(browser, site, "/console/messages?provider_message_id=acme-ph-4", 1280)
    listed = page.locator("[data-test=result] td[data-label=Created]").inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", listed)
    page.click("[data-test=open]")
    page.wait_for_url(re.compile(r"/console/messages/msg_"))
    facts = page.locator("[data-test=facts]").inner_text()
    assert listed in facts  # the same instant, written the same way, zone shown
    headline = page.locator("[data-test=headline]").inner_text()
    assert re.fullmatch(r"Undelivered \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC:", headline), headline
    page.goto(site.url("/console/"))
    assert re.search(
        r"As of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
        page.locator("[data-test=window-basis]").inner_text(),
    )
    done(page)


def test_the_sinch_batch_id_finds_every_message_of_the_batch(browser: Browser, site: Site) -> None:
    page = open_page(browser, site, "/console/messages", 360)
    page.fill("[data-test=q]", BATCH)
    page.click("[data-test=search]")
    page.wait_for_selector("[data-test=results]")
    assert page.locator("[data-test=result]").count() == 2
    assert no_sideways_scroll(page, 360)
    done(page)


def test_the_search_downloads_as_csv(browser: Browser, site: Site) -> None:
    page = open_page(browser, site, "/console/messages?country=ph&network=515-03", 1280)
    assert page.locator("[data-test=result]").count() == 2
    href = page.locator("[data-test=csv]").get_attribute("href")
    assert href is not None and href.startswith("/console/messages.csv?")
    answer = page.request.get(site.url(href))  # with the page's session cookie
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text().splitlines()
    assert lines[0].startswith("id,provider,provider_message_id,to,country,network,status")
    assert len(lines) == 3
    assert all(",PH,515-03,undelivered," in line for line in lines[1:])
    done(page)
