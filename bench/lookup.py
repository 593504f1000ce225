"""Staff lookups at scale: a realistic store, lookup latency, query plans, bytes per message.

Run from the repository root in the venv (``pip install -e '.[test]'``)::

    python bench/lookup.py              # 1,000,000 messages, sized at 250k, 500k and 1M
    python bench/lookup.py --quick      # 20,000 messages, 200 lookups (tests/bench runs it)
    python bench/lookup.py --write-doc  # also rewrite the tables in docs/performance.md

Theory of operation
-------------------
Generating. Messages go out at a steady rate over 30 days, each through one of four
providers (Twilio, Infobip, Vonage SMS API, a Standard Webhooks sender) with that
provider's own message ids, to E.164 numbers in five countries. Numbers repeat with a
skew: on average three messages each, the busiest one about ``sqrt(3 N)``. Every message
gets three reports (accepted/queued, sent/en route, then delivered or a failure with the
provider's error code); 3 % arrive out of order and 2 % of the requests are redelivered.
Twilio and Vonage post one report per request, Infobip batches of up to 40 and the
Standard sender batches of up to 10, as their webhooks do.

Each request is built by the ``receiver.testing`` builder of its provider type, with the
headers a real request through a TLS proxy carries, parsed by the real provider parser,
and written by ``receiver.store.ingest.apply_request``: the function the ingest writer runs for
each request. So the messages, timeline rows (``events``), raw requests (one per request
that brought a new report, batches stored once) and every index are exactly what ingest
writes, and cannot drift from it as hand-written ``executemany`` inserts would (a
change to ingest's writes changes the generated store too). Only the transaction
handling is the generator's own: about ``--batch`` requests per transaction with
``synchronous = OFF``, which is fine for a throwaway file and is never how the service
runs (it commits every group with ``synchronous = FULL``; ``bench/ingest.py`` measures
that path).

Measuring. At each checkpoint size the WAL is checkpointed and the file measured
(``dbstat`` gives each table's and index's share). Then random existing messages (a new
sample for each kind of lookup, so one kind does not warm the cache for the next) are
looked up through the real code paths: ``SqliteStore.find_messages`` with the
``MessageFilter`` the staff API builds from the query (``MessageQuery``), and the
timeline as ``GET /v1/messages/{id}/events`` reads it; at the largest size also end to
end through a real ``receiver serve`` on loopback with a viewer token. The SQL each
lookup ran is captured with a trace callback and its ``EXPLAIN QUERY PLAN`` printed
with a marker: ``PLAN OK`` when it searches the index meant for it, ``PLAN FULL-SCAN``
when it walks a whole table or index, ``PLAN WRONG-INDEX`` otherwise. No ``ANALYZE``
is run, because the service never runs it either. Nothing is retried or discarded:
the machine's load and how much of the file the OS kept cached are printed with the
numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from receiver.core.delivery import Bucket, summarize
from receiver.http.staff import MessageQuery, message_filter
from receiver.providers import PROVIDER_TYPES, Provider
from receiver.providers.base import InboundRequest
from receiver.records import MessageFilter, Position, RawRequest
from receiver.store.base import to_text
from receiver.store.ingest import apply_request
from receiver.store.sqlite import SqliteStore, migrate
from receiver.store.tx import SqliteTx, run_sync
from receiver.testing import (
    infobip_request,
    infobip_result,
    standard_report,
    standard_request,
    twilio_report,
    twilio_request,
    vonage_sms_report,
    vonage_sms_request,
)
from receiver.testing.base import SignedRequest, random_uuid
from receiver.testing.pytest_plugin import ReceiverServer, write_config
from receiver.testing.twilio import twilio_message_sid
from receiver.testing.vonage import vonage_message_id

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
SECTION = "## Store at scale"
BEGIN = "<!-- bench/lookup.py: begin (generated; edit the text above) -->"
END = "<!-- bench/lookup.py: end -->"

TARGET_P99_MS = 5.0
PMID_INDEX = "messages_by_provider_message_id"
ID_INDEX = "sqlite_autoindex_messages_1"  # the primary key's
PAGE = 50  # the staff API's default limit; it asks the store for one more
PUBLIC_BASE_URL = "https://dlr.example.com"
START = datetime(2026, 10, 24, tzinfo=UTC)
SPAN = timedelta(days=30)

TWILIO_TOKEN = "5f0c1b9e8d7a6c5b4a3f2e1d0c9b8a7f"
VONAGE_SECRET = "bench-vonage-signature-secret"
INFOBIP_CREDENTIALS = "infobip:bench-password"
STANDARD_SECRET = "whsec_YmVuY2gtc3RhbmRhcmQtc2VjcmV0LWtleQ=="
PROVIDERS: dict[str, dict[str, Any]] = {
    "twilio": {"type": "twilio", "secrets": [TWILIO_TOKEN]},
    "vonage": {"type": "vonage", "secrets": [VONAGE_SECRET], "signature_method": "sha256"},
    "infobip": {"type": "infobip", "secrets": [INFOBIP_CREDENTIALS]},
    "acme": {"type": "standard", "secrets": [STANDARD_SECRET]},
}
SHARE = {"twilio": 35, "infobip": 30, "vonage": 20, "acme": 15}
"""Percent of messages per provider."""
BATCH = {"twilio": 1, "vonage": 1, "infobip": 40, "acme": 10}
"""The most reports one request carries."""
USER_AGENT = {
    "twilio": "TwilioProxy/1.1",
    "vonage": "Vonage-DLR/1.0",
    "infobip": "Infobip-Notifications/2.0",
    "acme": "Svix-Webhooks/1.62",
}
# (reports of a delivered message, of a failed one, the failure's error code)
WORDS = {
    "twilio": (("queued", "sent", "delivered"), ("queued", "sent", "undelivered")),
    "vonage": (("accepted", "buffered", "delivered"), ("accepted", "buffered", "failed")),
    "infobip": (
        ("PENDING_ACCEPTED", "PENDING_ENROUTE", "DELIVERED_TO_HANDSET"),
        ("PENDING_ACCEPTED", "PENDING_ENROUTE", "UNDELIVERABLE_NOT_DELIVERED"),
    ),
    "acme": (("queued", "sent", "delivered"), ("queued", "sent", "undelivered")),
}
ERRORS = {
    "twilio": ["30003", "30005", "30006", "30008"],
    "vonage": ["1", "5", "6", "99"],
    "infobip": ["EC_ABSENT_SUBSCRIBER", "EC_UNKNOWN_SUBSCRIBER", "EC_CALL_BARRED"],
    "acme": ["ABSENT_SUBSCRIBER", "UNKNOWN_SUBSCRIBER", "CARRIER_REJECTED"],
}
INFOBIP_ERROR_IDS = {"EC_ABSENT_SUBSCRIBER": 27, "EC_UNKNOWN_SUBSCRIBER": 1, "EC_CALL_BARRED": 13}
NETWORKS = {
    "+63": ("515-02", "515-03"),
    "+1": ("310-260", "311-480"),
    "+44": ("234-10", "234-15"),
    "+91": ("404-45", "405-857"),
    "+55": ("724-05", "724-11"),
}
"""Two mobile networks per country (MCC-MNC); Vonage, Infobip and the Standard sender name
the recipient's in their reports, Twilio does not (so its messages' network is unknown)."""
TARGET_STATS_P99_MS = 50.0
"""Issue 15: GET /v1/stats/delivery, 30 days by provider x country, at 1,000,000 messages."""
STATS_LOOKUP = "stats/delivery, 30 days, by provider x country"
DAILY = "delivery_daily"
LATENCY_DAILY = "latency_daily"
FAILURE_RATE = 0.07
OUT_OF_ORDER_RATE = 0.03
REDELIVERY_RATE = 0.02
# (country code and mobile prefixes, subscriber digits)
COUNTRIES = [
    ("+63", ("917", "918", "927", "995"), 7),
    ("+1", ("2125", "4155", "6465", "3125"), 6),
    ("+44", ("7700", "7911", "7400", "7956"), 6),
    ("+91", ("98", "99", "97", "96"), 8),
    ("+55", ("119", "219", "319", "419"), 8),
]


# -- generating -------------------------------------------------------------------------


def phone_number(k: int) -> str:
    """The ``k``-th number of the pool: distinct for distinct ``k`` (below 10^6 each)."""
    code, prefixes, digits = COUNTRIES[k % len(COUNTRIES)]
    j = k // len(COUNTRIES)
    subscriber = (j * 104729) % 10**digits  # a prime: a bijection mod 10^digits
    return f"{code}{prefixes[j % len(prefixes)]}{subscriber:0{digits}d}"


def network_of(number: str) -> str:
    """The network a provider's report names for ``number`` (the same for every report)."""
    code = next(code for code in NETWORKS if number.startswith(code))
    return NETWORKS[code][int(number[-1]) % 2]


def provider_message_id(provider: str, rng: random.Random) -> str:
    if provider == "twilio":
        return twilio_message_sid(rng)
    if provider == "vonage":
        return vonage_message_id(rng)
    if provider == "infobip":
        return random_uuid(rng)
    return f"acme-{rng.getrandbits(96):024x}"


@dataclass(slots=True)
class Planned:
    """One report as its provider will send it."""

    provider: str
    message_id: str
    to: str
    word: str
    occurred_at: datetime
    received_at: datetime
    sent_at: datetime
    error: str | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request as it arrives, with the reports the provider parsed."""

    provider: str
    raw: RawRequest
    reports: list[Any]


@dataclass(slots=True)
class Generator:
    """Deterministic (``seed``) stream of webhook requests for messages 0, 1, 2, ..."""

    total: int
    seed: int
    rng: random.Random = field(init=False)
    parsers: dict[str, Provider] = field(init=False)
    numbers: int = field(init=False)
    spacing: float = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.parsers = {}
        for name, table in PROVIDERS.items():
            cls = PROVIDER_TYPES[table["type"]]
            self.parsers[name] = cls(name, cls.config_model.model_validate(table))
        self.numbers = max(1, self.total // 3)
        self.spacing = SPAN.total_seconds() / self.total

    def plan(self, index: int) -> list[Planned]:
        rng = self.rng
        provider = rng.choices(list(SHARE), weights=list(SHARE.values()))[0]
        message_id = provider_message_id(provider, rng)
        u = rng.random()
        to = phone_number(int(self.numbers * u * u))  # skewed: low k are busy numbers
        failed = rng.random() < FAILURE_RATE
        words = WORDS[provider][failed]
        error = rng.choice(ERRORS[provider]) if failed else None
        reference = None
        if provider == "acme" or (provider == "vonage" and rng.random() < 0.5):
            reference = f"order-{rng.randrange(10**8):08d}-{rng.choice(('otp', 'shipping'))}"
        sent_at = START + timedelta(seconds=index * self.spacing + rng.random() * self.spacing)
        offsets = [
            rng.uniform(0.2, 2.0),
            rng.uniform(2.0, 20.0),
            math.exp(rng.uniform(math.log(5.0), math.log(3600.0))),  # 5 s .. 1 h
        ]
        occurred = [sent_at + timedelta(seconds=s) for s in offsets]
        received = [t + timedelta(seconds=rng.uniform(0.05, 2.0)) for t in occurred]
        if rng.random() < OUT_OF_ORDER_RATE:
            received[1], received[2] = received[2], received[1]
        return [
            Planned(
                provider=provider,
                message_id=message_id,
                to=to,
                word=word,
                occurred_at=occurred[i],
                received_at=received[i],
                sent_at=sent_at,
                error=error if i == 2 else None,
                reference=reference,
            )
            for i, word in enumerate(words)
        ]

    def deliveries(self, start: int, stop: int) -> list[Delivery]:
        """The requests carrying the reports of messages ``start`` .. ``stop - 1``, in
        arrival order (with redeliveries)."""
        per_provider: dict[str, list[Planned]] = {name: [] for name in PROVIDERS}
        for index in range(start, stop):
            for report in self.plan(index):
                per_provider[report.provider].append(report)
        out: list[Delivery] = []
        for provider, planned in per_provider.items():
            planned.sort(key=lambda p: p.received_at)
            i = 0
            while i < len(planned):
                size = self.rng.randint(1, BATCH[provider])
                batch = planned[i : i + size]
                i += size
                received = max(p.received_at for p in batch)
                request = self.build(provider, batch, received)
                out.append(self.parse(provider, request, received))
                if self.rng.random() < REDELIVERY_RATE:
                    again = received + timedelta(seconds=self.rng.uniform(30, 600))
                    out.append(self.parse(provider, request, again))
        out.sort(key=lambda d: d.raw.received_at)
        return out

    def build(self, provider: str, batch: list[Planned], received: datetime) -> SignedRequest:
        stamp = int(received.timestamp())
        if provider == "twilio":
            (p,) = batch
            params = twilio_report(p.message_id, p.word, to=p.to, error_code=p.error)
            return twilio_request(
                TWILIO_TOKEN, params, public_base_url=PUBLIC_BASE_URL, provider=provider
            )
        if provider == "vonage":
            (p,) = batch
            fields = vonage_sms_report(
                p.message_id,
                p.word,
                msisdn=p.to.removeprefix("+"),
                to="ACME",
                network_code=network_of(p.to).replace("-", ""),
                price="0.03330000",
                err_code=p.error or "0",
                scts=p.occurred_at,
                message_timestamp=p.occurred_at,
                client_ref=p.reference,
            )
            return vonage_sms_request(
                VONAGE_SECRET,
                fields,
                provider=provider,
                signature_method="sha256",
                timestamp=stamp,
                nonce=random_uuid(self.rng),
            )
        if provider == "infobip":
            return infobip_request(
                INFOBIP_CREDENTIALS, self.infobip_results(batch), provider=provider
            )
        reports = [
            standard_report(
                p.message_id,
                p.word,
                occurred_at=p.occurred_at,
                to=p.to,
                error_code=p.error,
                error_message="absent subscriber" if p.error else None,
                client_reference=p.reference,
                network=network_of(p.to),
            )
            for p in batch
        ]
        return standard_request(
            STANDARD_SECRET,
            reports,
            provider=provider,
            event_id=f"msg_{self.rng.getrandbits(128):032x}",
            timestamp=stamp,
        )

    @staticmethod
    def infobip_results(batch: list[Planned]) -> list[dict[str, Any]]:
        return [
            infobip_result(
                message_id=p.message_id,
                status=p.word,
                to=p.to.removeprefix("+"),
                bulk_id=f"bulk-{p.sent_at:%Y%m%d%H}",
                sent_at=p.sent_at,
                done_at=p.occurred_at,
                error_id=INFOBIP_ERROR_IDS[p.error] if p.error else 0,
                error_name=p.error or "NO_ERROR",
                error_group_id=1 if p.error else None,
                error_group_name="HANDSET_ERRORS" if p.error else None,
                mcc_mnc=network_of(p.to).replace("-", ""),
            )
            for p in batch
        ]

    def parse(self, provider: str, request: SignedRequest, received: datetime) -> Delivery:
        """The request as the HTTP edge hands it to the store: the provider's reports and
        a ``RawRequest`` with the headers a request through a TLS proxy carries."""
        headers = {
            "host": "dlr.example.com",
            "user-agent": USER_AGENT[provider],
            "accept": "*/*",
            "content-length": str(len(request.body)),
            **request.headers,
            "x-forwarded-for": f"203.0.113.{self.rng.randrange(1, 255)}",
            "x-forwarded-proto": "https",
        }
        inbound = InboundRequest.captured(request, PUBLIC_BASE_URL, received)
        reports = self.parsers[provider].parse(inbound)
        raw = RawRequest(
            path=request.path,
            body=request.body,
            headers=headers,
            method=request.method,
            received_at=received,
        )
        return Delivery(provider, raw, reports)


def connect_generator(path: Path) -> sqlite3.Connection:
    """The generator's connection: WAL like the service, but ``synchronous = OFF`` (a
    crash may corrupt this throwaway file; the service always runs ``FULL``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row  # _apply reads rows by column name
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB: the indexes of 1M stay cached
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    return conn


def generate(
    conn: sqlite3.Connection, gen: Generator, start: int, stop: int, batch: int
) -> dict[str, int]:
    """Write messages ``start`` .. ``stop - 1``; counts of what ``_apply`` reported."""
    totals = {"requests": 0, "received": 0, "applied": 0, "duplicates": 0, "superseded": 0}
    chunk = max(1, batch // 2)  # messages per slice (about 2 requests per message)
    for first in range(start, stop, chunk):
        deliveries = gen.deliveries(first, min(stop, first + chunk))
        conn.execute("BEGIN IMMEDIATE")
        for d in deliveries:
            outcome = run_sync(apply_request(SqliteTx(conn), d.provider, d.raw, d.reports))
            totals["requests"] += 1
            for name in ("received", "applied", "duplicates", "superseded"):
                totals[name] += getattr(outcome, name)
        conn.execute("COMMIT")
    return totals


# -- measuring --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """An existing message to look up."""

    id: str
    provider: str
    provider_message_id: str
    to: str


@dataclass(slots=True)
class Timing:
    lookup: str
    path: str
    messages: int
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """This process's CPU time per lookup (store path only): the lookup's own cost,
    without the time spent waiting for a core on a shared machine."""
    server_cpu: float | None = None
    """The server process's CPU seconds over all the lookups (HTTP path only)."""
    target: bool = False
    """Whether the issue's target (p99 <= ``target_ms``) applies to this row."""
    target_ms: float = TARGET_P99_MS

    def percentile(self, q: float, cpu: bool = False) -> float:
        """Nearest-rank percentile, in milliseconds."""
        ordered = sorted(self.cpu if cpu else self.samples)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    @property
    def verdict(self) -> str:
        if not self.target:
            return "-"
        return "pass" if self.percentile(0.99) <= self.target_ms else "MISS"


@dataclass(frozen=True, slots=True)
class Size:
    messages: int
    events: int
    raw_requests: int
    file_bytes: int
    free_bytes: int
    generate_seconds: float

    @property
    def per_message(self) -> float:
        return self.file_bytes / self.messages


BUDGET_SECONDS = 60.0
"""Time limit per lookup kind (``--budget-seconds``), so that a lookup gone slow (a full
scan) ends the run anyway: the row then says how many lookups ran."""


def over_budget(started: float, began: float, budget_seconds: float) -> bool:
    """Whether a lookup that started at ``started``, of a kind begun at ``began``, is
    past the kind's budget (none when ``budget_seconds`` is 0)."""
    return budget_seconds > 0 and started > began + budget_seconds


def sample_keys(path: Path, count: int, seed: int) -> list[Key]:
    conn = sqlite3.connect(path)
    try:
        (top,) = conn.execute("SELECT max(rowid) FROM messages").fetchone()
        rng = random.Random(seed)
        keys: list[Key] = []
        while len(keys) < count:
            row = conn.execute(
                "SELECT id, provider, provider_message_id, to_number FROM messages WHERE rowid = ?",
                (rng.randint(1, top),),
            ).fetchone()
            if row is not None:
                keys.append(Key(*row))
        return keys
    finally:
        conn.close()


def busiest_number(path: Path) -> tuple[str, int]:
    """The number with the most messages: the pool's first, by construction."""
    conn = sqlite3.connect(path)
    try:
        number = phone_number(0)
        (count,) = conn.execute(
            "SELECT count(*) FROM messages WHERE to_number = ?", (number,)
        ).fetchone()
        return number, count
    finally:
        conn.close()


def api_filter(**params: str) -> MessageFilter:
    """The filter ``GET /v1/messages`` builds from these query parameters."""
    return message_filter(MessageQuery.model_validate(params), {}, datetime.now(UTC))


Lookup = Callable[[Key], Awaitable[None]]


async def measure_store(
    path: Path, lookups: int, seed: int, messages: int, budget_seconds: float = BUDGET_SECONDS
) -> tuple[list[Timing], dict[str, list[tuple[str, str]]]]:
    """Time each lookup kind through ``SqliteStore`` (each kind with its own random
    messages, so that one kind does not warm the cache for the next); the SQL each ran."""
    store = SqliteStore(path)
    await store.open(ingest=False)
    try:  # an open store left behind keeps its thread, and the process, alive
        return await _measure_lookups(store, path, lookups, seed, messages, budget_seconds)
    finally:
        await store.close()


async def _measure_lookups(
    store: SqliteStore, path: Path, lookups: int, seed: int, messages: int, budget_seconds: float
) -> tuple[list[Timing], dict[str, list[tuple[str, str]]]]:
    busy, busy_count = busiest_number(path)
    busy_filter = api_filter(to=busy)
    first_page = await store.find_messages(busy_filter, PAGE + 1, None)
    after = Position(to_text(first_page[PAGE - 1].created_at), first_page[PAGE - 1].id)

    async def by_provider_message_id(key: Key) -> None:
        found = await store.find_messages(
            api_filter(provider_message_id=key.provider_message_id), PAGE + 1, None
        )
        assert any(m.id == key.id for m in found), key

    async def by_to(key: Key) -> None:
        found = await store.find_messages(api_filter(to=key.to), PAGE + 1, None)
        assert found and all(m.to == key.to for m in found), key

    async def by_to_and_status(key: Key) -> None:
        found = await store.find_messages(api_filter(to=key.to, status="delivered"), PAGE + 1, None)
        assert all(m.to == key.to and m.status == "delivered" for m in found), key

    async def by_busiest(key: Key) -> None:
        found = await store.find_messages(busy_filter, PAGE + 1, None)
        assert len(found) == PAGE + 1

    async def by_busiest_page_2(key: Key) -> None:
        found = await store.find_messages(busy_filter, PAGE + 1, after)
        assert found and found[0].id != first_page[0].id

    async def timeline(key: Key) -> None:
        assert await store.get_message(key.id) is not None
        assert len(await store.message_events(key.id)) >= 1

    def stats(group_by: tuple[str, ...], bucket: Bucket | None) -> Lookup:
        """``GET /v1/stats/delivery`` for the 30 days of messages, as the API reads it."""

        async def lookup(key: Key) -> None:
            cells = await store.delivery_cells(START, START + SPAN, group_by, bucket)
            rows = summarize(cells, group_by, bucket)
            assert sum(row["messages"] for row in rows) >= messages * 0.99, rows[:3]

        return lookup

    busiest = f"to, busiest number ({busy_count:,} messages)"
    # (lookup, how, whether the target applies, the index each of its statements must use)
    kinds: list[tuple[str, Lookup, bool, list[str]]] = [
        ("provider_message_id", by_provider_message_id, True, [PMID_INDEX]),
        ("to", by_to, True, ["messages_by_to"]),
        ("to and status=delivered", by_to_and_status, True, ["messages_by_to"]),
        (busiest, by_busiest, True, ["messages_by_to"]),
        (busiest + ", page 2 (cursor)", by_busiest_page_2, False, ["messages_by_to"]),
        ("timeline (message + events)", timeline, False, [ID_INDEX, "events_by_message"]),
        (STATS_LOOKUP, stats(("provider", "country"), None), True, [DAILY, LATENCY_DAILY]),
        (
            "stats/delivery, 30 days, per day, by provider x country x network",
            stats(("provider", "country", "network"), "1d"),
            False,
            [DAILY, LATENCY_DAILY],
        ),
    ]
    timings: list[Timing] = []
    plans: dict[str, list[tuple[str, str]]] = {}
    for number, (name, lookup, target, indexes) in enumerate(kinds):
        keys = sample_keys(path, lookups, seed + number)
        statements: list[str] = []
        await store.reader.set_trace_callback(statements.append)
        await lookup(keys[0])
        await store.reader.set_trace_callback(None)  # type: ignore[arg-type]
        assert len(statements) == len(indexes), statements
        plans[name] = list(zip(statements, indexes, strict=True))
        timing = Timing(name, "store", messages, target=target)
        if name.startswith("stats/"):
            timing.target_ms = TARGET_STATS_P99_MS
        began = time.perf_counter()
        for key in keys:
            cpu = time.process_time()
            started = time.perf_counter()
            await lookup(key)
            timing.samples.append(time.perf_counter() - started)
            timing.cpu.append(time.process_time() - cpu)
            if over_budget(started, began, budget_seconds):
                break
        timings.append(timing)
    return timings, plans


def cpu_seconds(server: ReceiverServer) -> float:
    """The CPU time the server process has used (user + system, from /proc)."""
    assert server.process is not None
    stat = Path(f"/proc/{server.process.pid}/stat").read_text()
    utime, stime = stat.rsplit(")", 1)[1].split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def measure_http(
    workdir: Path, lookups: int, seed: int, messages: int, budget_seconds: float = BUDGET_SECONDS
) -> list[Timing]:
    """Time the lookups end to end (other random messages): a real ``receiver serve``,
    a viewer token, one keep-alive client."""
    server = ReceiverServer(workdir, workdir / "receiver.toml").start()
    try:
        token = server.staff_token(f"bench-{uuid.uuid4().hex[:8]}", "viewer")  # --reuse: a new one
        busy, busy_count = busiest_number(workdir / "receiver.db")
        requests: list[tuple[str, Callable[[Key], tuple[str, dict[str, str]]], bool]] = [
            (
                "provider_message_id",
                lambda k: ("/v1/messages", {"provider_message_id": k.provider_message_id}),
                True,
            ),
            ("to", lambda k: ("/v1/messages", {"to": k.to}), True),
            (
                f"to, busiest number ({busy_count:,} messages)",
                lambda k: ("/v1/messages", {"to": busy}),
                True,
            ),
            (
                "timeline (GET /v1/messages/{id}/events)",
                lambda k: (f"/v1/messages/{k.id}/events", {}),
                False,
            ),
            (
                STATS_LOOKUP + " (GET /v1/stats/delivery)",
                lambda k: (
                    "/v1/stats/delivery",
                    {
                        "since": START.isoformat(),
                        "until": (START + SPAN).isoformat(),
                        "group_by": "provider,country",
                    },
                ),
                True,
            ),
        ]
        timings = []
        with server.api(token) as client:
            for number, (name, request, target) in enumerate(requests):
                keys = sample_keys(workdir / "receiver.db", lookups, seed + number)
                timing = Timing(name, "HTTP", messages, target=target)
                if name.startswith("stats/"):
                    timing.target_ms = TARGET_STATS_P99_MS
                server_cpu = cpu_seconds(server)
                began = time.perf_counter()
                for key in keys:
                    url, params = request(key)
                    started = time.perf_counter()
                    response = client.get(url, params=params)
                    timing.samples.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    body = response.json()
                    assert body.get("items") or body.get("rows"), (url, params)
                    if over_budget(started, began, budget_seconds):
                        break
                timing.server_cpu = cpu_seconds(server) - server_cpu
                timings.append(timing)
        return timings
    finally:
        server.stop()


def explain(path: Path, plans: dict[str, list[tuple[str, str]]]) -> tuple[list[str], bool]:
    """``EXPLAIN QUERY PLAN`` of every captured statement, and a marker line per lookup:
    ``PLAN OK`` when each statement searches the index meant for it, ``PLAN FULL-SCAN``
    when one walks a whole table or index, ``PLAN WRONG-INDEX`` when one searches
    another index (such as every delivered message, for one number's)."""
    conn = sqlite3.connect(path)
    lines: list[str] = []
    all_ok = True
    try:
        for name, statements in plans.items():
            verdict, used = "OK", list[str]()
            for sql, index in statements:
                lines.append(f"-- {name}\n{sql}")
                details = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
                lines += [f"   {detail}" for detail in details]
                scans = [d for d in details if d.startswith("SCAN ")]
                search = f"SEARCH {'events' if index.startswith('events') else 'messages'}"
                right = [d for d in details if d.startswith(f"{search} USING INDEX {index} ")]
                if index.startswith(("delivery_", "latency_")):  # aggregates: WITHOUT ROWID
                    right = [
                        d for d in details if d.startswith(f"SEARCH {index} USING PRIMARY KEY")
                    ]
                if scans:
                    verdict, used = "FULL-SCAN", used + scans
                elif not right:
                    verdict = "WRONG-INDEX" if verdict == "OK" else verdict
                    used += [d for d in details if d.startswith("SEARCH ")]
                else:
                    used += right
            all_ok &= verdict == "OK"
            lines.append(f"PLAN {verdict} {name}: {'; '.join(used)}")
    finally:
        conn.close()
    return lines, all_ok


def page_cache(path: Path) -> str:
    """How much of the file is in the OS page cache (``fincore``), as a sentence."""
    if shutil.which("fincore") is None:
        return "How much of the file was in the OS page cache is unknown (no fincore)."
    result = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        return "How much of the file was in the OS page cache is unknown."
    resident = int(result.stdout.strip())
    return (
        f"When the lookups began, {mb(resident)} of the file's {mb(path.stat().st_size)} MB"
        " were in the OS page cache (`fincore`)."
    )


def measure_size(conn: sqlite3.Connection, path: Path, seconds: float) -> Size:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    count = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("messages", "events", "raw_requests")
    }
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
    return Size(
        count["messages"],
        count["events"],
        count["raw_requests"],
        path.stat().st_size,
        free,
        seconds,
    )


def table_shares(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(table, table or index name, bytes) for every b-tree, from ``dbstat``."""
    rows = conn.execute(
        "SELECT s.name, coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s"
        " LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY s.name"
    ).fetchall()
    return sorted(((table, name, size) for name, table, size in rows), key=lambda r: -r[2])


# -- reporting --------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        ram_kb = int(re.search(r"MemTotal:\s+(\d+)", info.read())[1])  # type: ignore[index]
    return (
        f"{os.cpu_count()} cores ({cpu}), {ram_kb / 2**20:.0f} GiB RAM, Linux "
        f"{platform.release()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}"
    )


def mb(size: float) -> str:
    return f"{size / 1e6:,.1f}"


def report(
    command: str,
    sizes: list[Size],
    shares: list[tuple[str, str, int]],
    timings: list[Timing],
    plan_lines: list[str],
    plans_ok: bool,
    conditions: str,
) -> str:
    largest = sizes[-1]
    out = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `{command}` on {machine()}.",
        conditions,
        "",
        "Size as the store grows (after a WAL checkpoint; a message here is the message",
        "row, its 3 timeline rows, the raw requests that carried them, and all indexes):",
        "",
        "| messages | timeline rows | raw requests | file MB | bytes/message | marginal"
        " bytes/message | generated in |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous: Size | None = None
    for size in sizes:
        marginal = "-"
        if previous is not None:
            grown = (size.file_bytes - previous.file_bytes) / (size.messages - previous.messages)
            marginal = f"{grown:,.0f}"
        out.append(
            f"| {size.messages:,} | {size.events:,} | {size.raw_requests:,} |"
            f" {mb(size.file_bytes)} | {size.per_message:,.0f} | {marginal} |"
            f" {size.generate_seconds:,.0f} s |"
        )
        previous = size
    per = [s.per_message for s in sizes]
    spread = max(per) / min(per) - 1
    linear = "pass" if spread <= 0.05 else "MISS"
    out += [
        "",
        f"Linear growth: bytes/message varies by {spread:.1%} across sizes (target: within"
        f" 5 %): **{linear}**.",
        "",
        f"Where the bytes go at {largest.messages:,} messages (`dbstat`):",
        "",
        "| table | b-tree | MB | bytes/message | bytes/row |",
        "|---|---|---:|---:|---:|",
    ]
    rows_of = {
        "messages": largest.messages,
        "events": largest.events,
        "raw_requests": largest.raw_requests,
    }
    other = sum(nbytes for table, _, nbytes in shares if table not in rows_of)
    for table, name, nbytes in [*(s for s in shares if s[0] in rows_of), ("others", "", other)]:
        per_row = f"{nbytes / rows_of[table]:,.0f}" if table in rows_of else "-"
        per_message = nbytes / largest.messages
        out.append(f"| {table} | {name} | {mb(nbytes)} | {per_message:,.0f} | {per_row} |")
    out += [
        "",
        "Lookups of random existing messages (ms; `store` is `SqliteStore` as the staff API",
        "calls it, `HTTP` is a client on loopback against `receiver serve`, token check and",
        "JSON included; `CPU` is, for the store, the p99 of the benchmark process's CPU time",
        "per lookup and, over HTTP, the server process's mean CPU time per request: the work",
        "done, without the waits for a core on a shared machine):",
        "",
        "| lookup | path | messages | n | p50 | p99 | max | CPU | target p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in timings:
        cpu = f"{t.percentile(0.99, cpu=True):.2f} (p99)" if t.cpu else "-"
        if t.server_cpu is not None:
            cpu = f"{t.server_cpu / len(t.samples) * 1000:.2f} (mean)"
        out.append(
            f"| {t.lookup} | {t.path} | {t.messages:,} | {len(t.samples):,} |"
            f" {t.percentile(0.5):.2f} | {t.percentile(0.99):.2f} |"
            f" {max(t.samples) * 1000:.2f} | {cpu} |"
            f" {t.verdict + f' (<= {t.target_ms:g} ms)' if t.target else '-'} |"
        )
    misses = [t for t in timings if t.verdict == "MISS"]
    verdict = "all pass" if not misses else f"{len(misses)} MISS"
    out += [
        "",
        f"Lookup targets: **{verdict}**. Query plans (from the SQL the store ran):"
        f" **{'every lookup uses an index' if plans_ok else 'FULL SCAN'}**.",
        "",
        "```",
        *plan_lines,
        "```",
    ]
    return "\n".join(out)


def write_doc(text: str) -> None:
    """Put ``text`` between the markers in the "Store at scale" section, leaving the rest
    of docs/performance.md (the "Ingest" section is bench/ingest.py's) as it is."""
    block = f"{BEGIN}\n{text}\n{END}"
    current = DOC.read_text() if DOC.exists() else "# Performance\n\n## Ingest\n\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        updated = head + block + rest.split(END, 1)[1]
    elif SECTION in current:
        head, rest = current.split(SECTION, 1)
        following = re.search(r"^## ", rest, re.MULTILINE)
        cut = following.start() if following else len(rest)
        body = rest[:cut].rstrip("\n")
        updated = head + SECTION + body + "\n\n" + block + "\n\n" + rest[cut:]
    else:
        updated = current.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    temporary = DOC.with_suffix(".md.lookup-tmp")
    temporary.write_text(updated.rstrip("\n") + "\n")
    os.replace(temporary, DOC)


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 messages, 200 lookups")
    parser.add_argument("--messages", type=int, help="store size (default 1,000,000)")
    parser.add_argument(
        "--checkpoints", help="sizes to measure at, comma-separated (default N/4, N/2, N)"
    )
    parser.add_argument("--lookups", type=int, help="lookups per kind (default 2,000)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--batch", type=int, default=20_000, help="requests per transaction")
    parser.add_argument("--workdir", type=Path, help="where the store goes (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir and its store")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the store already in --workdir"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the end-to-end lookups")
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=BUDGET_SECONDS,
        help=f"time limit per lookup kind (default {BUDGET_SECONDS:.0f}; 0: every lookup runs)",
    )
    parser.add_argument("--write-doc", action="store_true", help=f"update {DOC.name}")
    args = parser.parse_args(argv)
    args.messages = args.messages or (20_000 if args.quick else 1_000_000)
    args.lookups = args.lookups or (200 if args.quick else 2_000)
    if args.checkpoints:
        args.sizes = sorted({int(n) for n in args.checkpoints.split(",")})
    else:
        args.sizes = [args.messages // 4, args.messages // 2, args.messages]
    args.messages = args.sizes[-1]
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs --workdir")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/lookup.py " + " ".join(sys.argv[1:] if argv is None else argv)
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="lookup-")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "receiver.db"
    load_before = os.getloadavg()
    try:
        if not (workdir / "receiver.toml").exists():
            write_config(workdir, {"public_base_url": PUBLIC_BASE_URL}, PROVIDERS)
        conn = connect_generator(path)
        sizes: list[Size] = []
        timings: list[Timing] = []
        plans: dict[str, list[tuple[str, str]]] = {}
        if args.reuse:
            print(f"reusing {path}", flush=True)
            sizes.append(measure_size(conn, path, 0.0))
            args.sizes = [sizes[-1].messages]
        else:
            if path.stat().st_size and conn.execute("SELECT 1 FROM messages").fetchone():
                raise SystemExit(f"{path} is not empty: use --reuse or another --workdir")
            gen = Generator(total=args.messages, seed=args.seed)
            done = 0
            for target in args.sizes:
                started = time.perf_counter()
                counts = generate(conn, gen, done, target, args.batch)
                elapsed = time.perf_counter() - started
                done = target
                sizes.append(measure_size(conn, path, elapsed))
                print(f"generated {target:,} messages ({elapsed:,.0f} s): {counts}", flush=True)
                if target != args.sizes[-1]:
                    found, _ = asyncio.run(
                        measure_store(path, args.lookups, args.seed, target, args.budget_seconds)
                    )
                    timings += found
        shares = table_shares(conn)
        conn.close()
        cached = page_cache(path)
        found, plans = asyncio.run(
            measure_store(path, args.lookups, args.seed, sizes[-1].messages, args.budget_seconds)
        )
        timings += found
        if not args.no_http:
            timings += measure_http(
                workdir, args.lookups, args.seed + 100, sizes[-1].messages, args.budget_seconds
            )
        plan_lines, plans_ok = explain(path, plans)
        load_after = os.getloadavg()
        conditions = (
            "The machine was shared with other test runs (load average"
            f" {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end). {cached}"
        )
        text = report(command, sizes, shares, timings, plan_lines, plans_ok, conditions)
        print(text)
        for line in plan_lines:
            if line.startswith("PLAN "):
                print(line)
        print(f"ROWS {len(timings)} CHECKPOINTS {len(sizes)}")
        if args.write_doc:
            write_doc(text)
            print(f"wrote {DOC}")
        return 0 if plans_ok else 1
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
