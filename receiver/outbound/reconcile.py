"""The reconciler: finds messages whose final report is overdue, asks the provider,
and gives an honest verdict when no final word comes (README "Missing reports").

Theory of operation
-------------------
Every ``[reconcile] interval_seconds`` (and once by hand: ``receiver reconcile``) a
pass walks each configured provider's *overdue* messages, oldest change first: not
final, not ``unknown``, not still in the outbox, and unchanged (no report, no send
step) for the provider's ``report_timeout_seconds`` (receiver.store.reconcile). The
store leases what it hands out, so any number of processes can run passes: none asks
about a message another holds. For each message:

======================================  ==========================================
unchanged for ``report_give_up_seconds`` our verdict: ``unknown``, ``NO_FINAL_REPORT``
                                         (``source = 'receiver'``; a later report
                                         still corrects it)
the provider can be asked (``lookup``)   its status API, through the provider's sans-IO
and ``lookup_attempts`` are not spent    ``Sender.status_request``/``read_status``: the
                                         answer is a report (``source = 'lookup'``)
                                         merged like a webhook's; next lookup after
                                         ``report_timeout_seconds`` x 2^lookups
the provider answers 429                 the provider's requests (lookups and sends)
                                         pause for its ``Retry-After``; the message
                                         comes back then, no lookup counted
otherwise                                wait for the give-up age
======================================  ==========================================

The requests go through the outbox worker's ``exchange`` (OutboxWorker), so lookups and
sends share each provider's rate, 429 pauses and session. A pass by hand asks about
every overdue message again, whatever its backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as MetricCounter

from receiver.config import Config
from receiver.core.reports import Report
from receiver.core.status import FINAL
from receiver.errors import StoreUnavailable
from receiver.outbound.retry import retry_after_delay
from receiver.outbound.worker import OutboxWorker, Pacing
from receiver.providers.base import ApiClient, Deferred, NoSuchMessage, Provider, Tracked
from receiver.records import Looked, OverdueMessage, ReconcileWindow
from receiver.store.base import Store, new_id

log = logging.getLogger("receiver.reconcile")

DUE = ReconcileWindow()
"""The service's own passes: every overdue message that is due for a look."""
_MAX_DOUBLINGS = 30


def _now() -> datetime:
    return datetime.now(UTC)


def overdue_cutoffs(providers: Mapping[str, Provider], now: datetime) -> dict[str, datetime]:
    """Per provider: a non-final message unchanged since before this is overdue."""
    return {
        name: now - timedelta(seconds=provider.config.report_timeout)
        for name, provider in providers.items()
    }


class ReconcileMetrics:
    """Overdue messages per provider, lookups by outcome, reports recovered by lookup."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.overdue = Gauge(
            "receiver_overdue_messages",
            "Messages whose final report is overdue (as of the last reconcile pass).",
            ["provider"],
            registry=registry,
        )
        self.lookups = MetricCounter(
            "receiver_lookups",
            "Status lookups of overdue messages at the provider's API, by outcome.",
            ["provider", "outcome"],
            registry=registry,
        )
        self.recovered = MetricCounter(
            "receiver_reports_recovered",
            "Final statuses learned by a lookup rather than a webhook.",
            ["provider"],
            registry=registry,
        )
        self.gave_up = MetricCounter(
            "receiver_no_final_report",
            "Messages given our verdict unknown / NO_FINAL_REPORT.",
            ["provider"],
            registry=registry,
        )


@dataclass
class PassSummary:
    """What one pass did, per outcome: ``final`` (a lookup found the final status),
    ``pending``, ``not_found``, ``failed``, ``paused`` (429 or rate: asked again later),
    ``waiting`` (no lookup now: wait for the give-up), ``gave_up``, ``duplicate``."""

    overdue: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        parts = ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items()))
        return f"{self.overdue} overdue message(s)" + (f": {parts}" if parts else "")


Progress = Callable[[int], None]
"""Told how many more messages a pass has dealt with."""


class Reconciler:
    """Runs reconcile passes over one store for the configured providers."""

    def __init__(
        self,
        store: Store,
        config: Config,
        gateway: OutboxWorker,
        *,
        metrics: ReconcileMetrics | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.owner = owner or new_id("rcn_")
        self._store = store
        self._settings = config.settings.reconcile
        self._outbox = config.settings.outbox
        self._providers = config.providers
        self._gateway = gateway
        self._metrics = metrics
        self._clock = clock
        self._lookups: dict[str, ApiClient] = {
            name: api
            for name, provider in config.providers.items()
            if provider.looks_up() and (api := gateway.api_client(provider)) is not None
        }
        self._lease_seconds = 3 * (
            self._outbox.connect_timeout_seconds + self._outbox.read_timeout_seconds
        )
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask ``run`` to return after the lookups in flight."""
        self._stopping.set()

    def client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(
            self._outbox.read_timeout_seconds, connect=self._outbox.connect_timeout_seconds
        )
        return httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def run(self) -> None:
        """A pass every ``interval_seconds`` until ``stop()``; the first after one
        interval, so that after a restart the webhooks providers retry come first."""
        async with self.client() as client:
            while not await self._stopped_within(self._settings.interval_seconds):
                try:
                    summary = await self.run_pass(client)
                    if summary.overdue:
                        log.info("reconcile pass: %s", summary.describe())
                except StoreUnavailable as exc:
                    log.warning("reconcile pass stopped: %s", exc)
                except Exception:  # keep reconciling; the next pass tries again
                    log.exception("reconcile pass failed")

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def cutoffs(self, now: datetime, names: Iterable[str] | None = None) -> dict[str, datetime]:
        """Per provider: messages unchanged since before this are overdue."""
        chosen = self._providers if names is None else {n: self._providers[n] for n in names}
        return overdue_cutoffs(chosen, now)

    async def run_pass(
        self,
        client: httpx.AsyncClient,
        *,
        providers: Iterable[str] | None = None,
        window: ReconcileWindow = DUE,
        progress: Progress | None = None,
    ) -> PassSummary:
        """Deal with every overdue message of ``providers`` (default: all) once."""
        summary = PassSummary()
        names = list(self._providers if providers is None else providers)
        window = replace(window, started=self._clock())
        for name in names:
            provider = self._providers[name]
            # A pipeline: while one round of lookups runs, the next round is claimed and
            # the previous one recorded (the two reach the writer together and share a
            # commit), so the provider's pace never waits for the database.
            claimed = await self._claim(provider, window)
            recording: asyncio.Task[list[str]] | None = None
            while claimed and not self._stopping.is_set():
                summary.overdue += len(claimed)
                lookups = asyncio.gather(
                    *(self._reconcile(client, provider, message, window) for message in claimed)
                )
                done, claimed = await asyncio.gather(lookups, self._claim(provider, window))
                if recording is not None:
                    summary.outcomes.update(await recording)
                looked = [d for d in done if isinstance(d, Looked)]
                recording = asyncio.create_task(self._record(name, looked))
                summary.outcomes.update(d for d in done if isinstance(d, str))
                if progress is not None:
                    progress(len(done))
            if recording is not None:
                summary.outcomes.update(await recording)
            for message in claimed:  # stopping: hand back what the next round would ask
                await self._store.release_overdue(message.id, self.owner, self._clock())
        await self.observe_overdue()
        return summary

    async def _claim(self, provider: Provider, window: ReconcileWindow) -> list[OverdueMessage]:
        """Lease as many overdue messages as run at once: each is asked about at once,
        long before its lease (three request times) runs out."""
        now = self._clock()
        return await self._store.claim_overdue(
            provider.name,
            now - timedelta(seconds=provider.config.report_timeout),
            self.owner,
            now,
            self._lease_seconds,
            self._settings.concurrency,
            window,
        )

    async def observe_overdue(self) -> None:
        """Set the overdue gauge of every provider from the store."""
        if self._metrics is None:
            return
        for count in await self._store.overdue_counts(self.cutoffs(self._clock())):
            self._metrics.overdue.labels(count.provider).set(count.overdue)

    async def _reconcile(
        self,
        client: httpx.AsyncClient,
        provider: Provider,
        message: OverdueMessage,
        window: ReconcileWindow,
    ) -> str | Looked:
        """One leased message: our verdict, a lookup, or back to wait; its outcome, or
        what the lookup found, for ``_record`` to store with the others."""
        name, config = provider.name, provider.config
        now = self._clock()
        give_up_at = message.updated_at + timedelta(seconds=config.report_give_up)
        if now >= give_up_at:
            return await self._give_up(provider, message, now)
        sender = self._lookups.get(name)
        tracked = Tracked(message.id, message.provider_message_id, message.to, message.created_at)
        request = sender.status_request(tracked) if sender is not None else None
        spent = window.due_only and message.lookups >= config.lookup_attempts
        if sender is None or request is None or spent:
            outcome = None if spent else "no_lookup"
            await self._store.release_overdue(message.id, self.owner, give_up_at, outcome)
            return "waiting"

        def build() -> httpx.Request:  # afresh, should a 401 renew the credentials
            fresh = sender.status_request(tracked)
            assert fresh is not None  # as it was a moment ago: it depends only on tracked
            return fresh

        answer = await self._gateway.exchange(client, name, sender, build)
        now = self._clock()
        if isinstance(answer, httpx.Response):
            result = sender.read_status_lookup(tracked, answer, now)
        else:
            result = Deferred(f"the lookup failed: {answer.reason}", answer.retry_after)
        asked = retry_after_delay(result.retry_after, now) if isinstance(result, Deferred) else None
        if isinstance(answer, Pacing) or asked is not None:
            wait = asked if asked is not None else 1.0
            if not isinstance(answer, Pacing):
                self._gateway.pause(name, wait)  # its 429 holds every request to it
            at = min(now + timedelta(seconds=math.ceil(wait)), give_up_at)
            self._count(name, "paused")
            await self._store.release_overdue(message.id, self.owner, at)
            return "paused"
        doublings = min(message.lookups, _MAX_DOUBLINGS)
        next_at = min(now + timedelta(seconds=config.report_timeout * 2**doublings), give_up_at)
        if isinstance(result, Report):
            outcome = "final" if result.status in FINAL else "pending"
            return Looked(message.id, result, outcome, None, next_at, now)
        if isinstance(result, NoSuchMessage):
            error = "the provider does not know this message"
            return Looked(message.id, None, "not_found", error, next_at, now)
        return Looked(message.id, None, "failed", result.reason, next_at, now)

    async def _record(self, name: str, looked: list[Looked]) -> list[str]:
        """Store what a round of lookups found, in one transaction; their outcomes."""
        if not looked:
            return []
        merged = await self._store.record_lookups(name, self.owner, looked)
        outcomes = []
        for lookup, result in zip(looked, merged, strict=True):
            if result == "lost":
                log.warning(
                    "lost the lease of an overdue message",
                    extra={"message_id": lookup.message_id, "provider": name},
                )
                outcomes.append("lost")
                continue
            self._count(name, lookup.outcome)
            if lookup.outcome == "final" and result == "applied" and self._metrics is not None:
                self._metrics.recovered.labels(name).inc()
            outcomes.append("duplicate" if result == "duplicates" else lookup.outcome)
        return outcomes

    async def _give_up(self, provider: Provider, message: OverdueMessage, now: datetime) -> str:
        seconds = provider.config.report_give_up
        reason = f"no final report within {seconds:g} s of the last report or send step"
        if message.last_outcome == "failed" and message.last_error:
            reason += f"; the last lookup failed: {message.last_error}"
        elif message.last_outcome in ("pending", "not_found"):
            reason += f"; {message.lookups} lookup(s) found no final status"
        gave_up_before = now - timedelta(seconds=seconds)
        if not await self._store.give_up_report(
            provider.name, message.id, self.owner, gave_up_before, reason, now
        ):
            return "changed"
        log.warning("no final report: recorded unknown", extra=_fields(message))
        if self._metrics is not None:
            self._metrics.gave_up.labels(provider.name).inc()
        return "gave_up"

    def _count(self, provider: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.lookups.labels(provider, outcome).inc()


def _fields(message: OverdueMessage) -> dict[str, object]:
    return {"message_id": message.id, "provider": message.provider}


__all__ = ["PassSummary", "ReconcileMetrics", "Reconciler", "overdue_cutoffs"]
