"""Durability under a hard crash (kill -9) and a graceful drain (SIGTERM), on a real server.

A 200 means "committed to disk": whatever the process does next, every report that
was answered 200 must be in the store exactly once after a restart, and a provider's
redelivery of it must be a duplicate.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from conftest import Server, stored_rows

from receiver.testing import SignedRequest, standard_report, standard_request

CONCURRENCY = 32
TOTAL_REPORTS = 1000
KILL_AFTER_OK = 300


@dataclass
class Sent:
    """One report of the stream and what became of its request."""

    event_id: str
    message_id: str
    request: SignedRequest
    attempted: bool = False
    status: int | None = None  # None: never answered (connection error or never sent)
    body: dict[str, int] | None = None
    answered_at: float | None = None


@dataclass
class Stream:
    reports: list[Sent]
    ok: int = 0
    errors: list[str] = field(default_factory=list)

    def by_outcome(self) -> tuple[set[str], set[str], set[str]]:
        """(answered 200, attempted but unknown, never attempted) event ids."""
        ok = {r.event_id for r in self.reports if r.status == 200}
        unknown = {r.event_id for r in self.reports if r.attempted and r.status is None}
        unsent = {r.event_id for r in self.reports if not r.attempted}
        return ok, unknown, unsent


def make_stream(secret: str, total: int, tag: str) -> Stream:
    reports = []
    for i in range(total):
        event_id = f"evt_{tag}_{i:05d}"
        message_id = f"prov-{tag}-{i:05d}"
        request = standard_request(
            secret, standard_report(message_id, "delivered"), event_id=event_id
        )
        reports.append(Sent(event_id, message_id, request))
    return Stream(reports)


def client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
        timeout=httpx.Timeout(15.0),
    )


async def post_one(http: httpx.AsyncClient, sent: SignedRequest) -> httpx.Response:
    return await http.request(sent.method, sent.path, content=sent.body, headers=sent.headers)


async def run_stream(
    base_url: str,
    stream: Stream,
    *,
    stop_when: int,
    on_threshold: Callable[[], None],
) -> None:
    """Post the stream with CONCURRENCY in flight; call ``on_threshold`` once at ``stop_when`` 200s.

    After the threshold no new request is started (a dead server would refuse it anyway).
    """
    fired = asyncio.Event()
    queue: asyncio.Queue[Sent] = asyncio.Queue()
    for report in stream.reports:
        queue.put_nowait(report)

    async with client(base_url) as http:

        async def worker() -> None:
            while not fired.is_set():
                try:
                    report = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                report.attempted = True
                try:
                    answer = await post_one(http, report.request)
                except httpx.TransportError as exc:
                    stream.errors.append(type(exc).__name__)
                    continue
                report.status = answer.status_code
                report.answered_at = time.monotonic()
                if answer.status_code == 200:
                    report.body = answer.json()
                    stream.ok += 1
                    if stream.ok >= stop_when and not fired.is_set():
                        fired.set()
                        on_threshold()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def stored_events(server: Server) -> Counter[tuple[str, str]]:
    """(provider, event_id) -> how many rows, read straight from the store."""
    rows = stored_rows(server, "SELECT provider, event_id FROM events")
    return Counter((row["provider"], row["event_id"]) for row in rows)


def stored_reports(server: Server) -> dict[str, tuple[int, str, int]]:
    """event_id -> (deliveries, provider_message_id, messages with that provider id)."""
    rows = stored_rows(
        server,
        "SELECT e.event_id, e.deliveries, m.provider_message_id,"
        " (SELECT count(*) FROM messages m2 WHERE m2.provider = m.provider"
        "  AND m2.provider_message_id = m.provider_message_id) AS same_id"
        " FROM events e JOIN messages m ON m.id = e.message_id"
        " WHERE e.provider = 'default'",
    )
    return {
        row["event_id"]: (row["deliveries"], row["provider_message_id"], row["same_id"])
        for row in rows
    }


def all_messages(api: httpx.Client) -> list[dict[str, object]]:
    """Every message through the staff API, following the signed cursors."""
    items: list[dict[str, object]] = []
    params: dict[str, str | int] = {"provider": "default", "limit": 200}
    while True:
        page = api.get("/v1/messages", params=params)
        assert page.status_code == 200, page.text
        data = page.json()
        items += data["items"]
        if data["next_cursor"] is None:
            return items
        params = {"provider": "default", "limit": 200, "cursor": data["next_cursor"]}


def test_kill_9_mid_stream_loses_no_acknowledged_report(server):
    stream = make_stream(server.secret(), TOTAL_REPORTS, "crash")
    by_event = {r.event_id: r for r in stream.reports}
    process = server.process
    assert process is not None

    def kill() -> None:
        process.kill()  # SIGKILL: no drain, no lifespan shutdown, no flush

    asyncio.run(run_stream(server.base_url, stream, stop_when=KILL_AFTER_OK, on_threshold=kill))
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    ok, unknown, unsent = stream.by_outcome()
    assert len(ok) >= KILL_AFTER_OK
    statuses = Counter(r.status for r in stream.reports if r.status is not None)
    assert set(statuses) == {200}, statuses  # nothing but 200s and dropped connections
    for event_id in ok:
        assert by_event[event_id].body == {
            "received": 1,
            "applied": 1,
            "duplicates": 0,
            "superseded": 0,
        }
    assert unsent, "the kill came after the whole stream was sent; the test proved nothing"

    # The file as the crash left it (SQLite replays its WAL on open).
    events = stored_events(server)
    stored_ids = {event_id for (_, event_id) in events}
    assert all(count == 1 for count in events.values())
    assert {provider for (provider, _) in events} == {"default"}
    assert ok <= stored_ids, f"acknowledged but lost: {sorted(ok - stored_ids)[:10]}"
    assert stored_ids <= ok | unknown, f"stored but never sent: {sorted(stored_ids - ok - unknown)}"

    server.start()
    rows = stored_reports(server)
    assert set(rows) == stored_ids
    for event_id in ok:
        deliveries, pmid, copies = rows[event_id]
        assert (deliveries, pmid, copies) == (1, by_event[event_id].message_id, 1)

    with server.api(server.staff_token("auditor")) as api:
        messages = all_messages(api)
        per_pmid = Counter(str(m["provider_message_id"]) for m in messages)
        assert all(n == 1 for n in per_pmid.values())
        by_pmid = {m["provider_message_id"]: m for m in messages}
        expected = {by_event[e].message_id for e in stored_ids}
        assert set(per_pmid) == expected
        for event_id in sorted(ok):
            message = by_pmid[by_event[event_id].message_id]
            assert (message["status"], message["report_count"]) == ("delivered", 1)
            timeline = api.get(f"/v1/messages/{message['id']}/events")
            assert timeline.status_code == 200
            assert [(e["event_id"], e["deliveries"]) for e in timeline.json()["items"]] == [
                (event_id, 1)
            ]

    # The provider retries everything it did not see acknowledged, and more.
    retry = Stream(stream.reports)
    retry_answers: dict[str, dict[str, int]] = {}

    async def redeliver() -> None:
        semaphore = asyncio.Semaphore(CONCURRENCY)
        async with client(server.base_url) as http:

            async def one(report: Sent) -> None:
                async with semaphore:
                    answer = await post_one(http, report.request)
                assert answer.status_code == 200, answer.text
                retry_answers[report.event_id] = answer.json()

            await asyncio.gather(*(one(r) for r in retry.reports))

    asyncio.run(redeliver())
    duplicate = {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}
    applied = {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    for event_id, answer in retry_answers.items():
        if event_id in ok:
            assert answer == duplicate, event_id
        elif event_id in unknown:
            assert answer in (duplicate, applied), event_id
            assert (answer == duplicate) == (event_id in stored_ids), event_id
        else:
            assert answer == applied, event_id

    final = stored_events(server)
    assert set(final) == {("default", r.event_id) for r in stream.reports}
    assert all(count == 1 for count in final.values())
    rows = stored_reports(server)
    for event_id, (deliveries, pmid, copies) in rows.items():
        assert pmid == by_event[event_id].message_id
        assert copies == 1
        assert deliveries == (2 if event_id in stored_ids else 1), event_id


def test_sigterm_drains_in_flight_requests_and_exits_0(server):
    stream = make_stream(server.secret(), 600, "drain")
    process = server.process
    assert process is not None
    signalled_at: list[float] = []

    def terminate() -> None:
        signalled_at.append(time.monotonic())
        process.send_signal(signal.SIGTERM)

    asyncio.run(run_stream(server.base_url, stream, stop_when=100, on_threshold=terminate))
    try:
        code = process.wait(timeout=10)
    finally:
        exited_at = time.monotonic()
        server.stop(signal.SIGKILL)
    assert exited_at - signalled_at[0] < 5

    ok, unknown, _ = stream.by_outcome()
    statuses = Counter(r.status for r in stream.reports if r.status is not None)
    assert set(statuses) == {200}, statuses  # a drain answers what it took, never 5xx
    after_signal = [
        r for r in stream.reports if r.status == 200 and r.answered_at > signalled_at[0]
    ]
    assert after_signal, "no request was in flight at SIGTERM; the test proved nothing"

    events = stored_events(server)
    stored_ids = {event_id for (_, event_id) in events}
    assert ok <= stored_ids, f"acknowledged but lost: {sorted(ok - stored_ids)[:10]}"
    assert stored_ids <= ok | unknown
    assert all(count == 1 for count in events.values())

    server.start()
    with server.api(server.staff_token("auditor")) as api:
        messages = all_messages(api)
    assert {m["provider_message_id"] for m in messages} == {
        r.message_id for r in stream.reports if r.event_id in stored_ids
    }

    # Last, so the durability checks above run even if the exit code is wrong.
    assert code == 0, f"receiver exited with {code} after SIGTERM, expected 0"
