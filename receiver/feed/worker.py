"""The delivery worker: POSTs each change to every subscriber that wants it.

Theory of operation
-------------------
The store queues a delivery per change and subscriber in the transaction that wrote
the change (``receiver.store.changes``), so a change committed is a change delivered,
whatever happens to this process afterwards. Per subscriber, a loop leases due
deliveries (``Store.claim_deliveries``: any number of workers in any number of
processes can share one store) and sends each in a task of its own, at most
``concurrency`` at once. The claim never hands out a change while an earlier change of
the same message is pending or in flight for that subscriber, so each message's
changes arrive in ``seq`` order and different messages go in parallel.

Most deliveries need no claim: while the worker's heartbeat is fresh, the transaction
that writes a change leases its delivery to the worker (when no earlier change of the
message is on its way), and the worker finds it with a read; the transaction that
records a 2xx leases the message's next change, if it was waiting for that one, and
hands it back to the worker, which sends it at once.

An attempt: POST the signed body (``webhook-id`` = the change id, the same on every
attempt), then

=================================  =================================================
2xx                                delivered
410 Gone                           the subscriber is disabled (error in the log, the
                                   console and ``receiver subscribers list``) until
                                   ``receiver subscribers redeliver NAME``
429 / 503 with ``Retry-After``     again after it
anything else, connection errors   again after exponential backoff with full jitter
=================================  =================================================

never past ``retry_horizon_seconds`` after the change was queued: then it is dead
(``redeliver --dead`` queues it again). The worker wakes when this process commits a
change (``Store.watch_changes``); changes other processes lease to it (``receiver
serve`` with ``[feed] deliver_in_serve = false`` beside a ``receiver worker``) it
reads every ``PICKUP_SECONDS``, and it claims every ``POLL_SECONDS``, when it also looks
behind its pick-up cursor for a change committed after a later one (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from receiver.config import Config, SubscriberSettings
from receiver.core.signatures.standard_webhooks import decode_secret
from receiver.errors import StoreUnavailable
from receiver.feed.client import PostFailed, SubscriberClient
from receiver.feed.metrics import FeedMetrics
from receiver.feed.payload import signed_headers, webhook_body
from receiver.outbound.retry import backoff_delay, retry_after_delay
from receiver.records import Delivery, SubscriberRoute
from receiver.store.base import Store, new_id

log = logging.getLogger("receiver.feed")

POLL_SECONDS = 0.5
PICKUP_SECONDS = 0.05
"""How often the worker reads the deliveries leased to it by other processes'
transactions (one indexed read; a commit in this process wakes it at once)."""
HEALTH_SECONDS = 1.0
STOP_GRACE_SECONDS = 2.0
HEARTBEAT_SECONDS = 1.0
COALESCE_SECONDS = 0.01
"""The worker looks for new deliveries at most this often."""
CLAIM_FACTOR = 4
"""Deliveries leased per subscriber: this many times its ``concurrency``, so a claim
(one commit) feeds several POSTs and a slot never waits for one."""


@dataclass(frozen=True, slots=True)
class _Channel:
    """One subscriber as the worker sends to it."""

    name: str
    settings: SubscriberSettings
    key: bytes
    """The signing key (the first secret)."""
    client: SubscriberClient
    gate: asyncio.Semaphore
    """At most ``concurrency`` POSTs at once."""


def _now() -> datetime:
    return datetime.now(UTC)


def routes(config: Config) -> list[SubscriberRoute]:
    """The configured subscribers' filters, as the store routes changes by them."""
    return [
        SubscriberRoute(
            name,
            settings.providers,
            None if settings.statuses is None else [s.value for s in settings.statuses],
            settings.clients,
        )
        for name, settings in config.settings.subscribers.items()
    ]


class DeliveryWorker:
    """Delivers the change feed of one store to the configured subscribers."""

    def __init__(
        self,
        store: Store,
        config: Config,
        metrics: FeedMetrics | None = None,
        *,
        owner: str | None = None,
        deliver: bool = True,
    ) -> None:
        """``deliver`` False: only record the subscribers and keep the health gauges
        (``receiver serve`` with ``[feed] deliver_in_serve = false``)."""
        self.owner = owner or new_id("dlw_")
        self._deliver = deliver
        self._store = store
        self._subscribers = config.settings.subscribers
        self._routes = routes(config)
        self._metrics = metrics
        self._wakes = {name: asyncio.Event() for name in self._subscribers}
        self._stopping = asyncio.Event()
        self._random = random.Random()  # noqa: S311 - jitter, not a secret
        store.watch_changes(self.wake)

    def wake(self) -> None:
        """A change was committed: look for due deliveries now."""
        for event in self._wakes.values():
            event.set()

    def stop(self) -> None:
        """Ask ``run`` to return; in-flight attempts get a short grace, then are handed
        back (due again at once)."""
        self._stopping.set()

    async def run(self) -> None:
        """Record the subscribers' filters, then deliver (or, not ``deliver``, keep the
        health gauges) until ``stop()``."""
        while not self._stopping.is_set():
            try:
                await self._store.sync_subscribers(self._routes)
                break
            except StoreUnavailable as exc:  # the store may come back: try again
                log.warning("cannot record the subscribers: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), POLL_SECONDS)
        if not self._subscribers or self._stopping.is_set():
            return
        loops = [asyncio.create_task(self._watch_health())]
        if self._deliver:
            loops += [
                asyncio.create_task(self._serve(name, settings))
                for name, settings in self._subscribers.items()
            ]
        try:
            await self._stopping.wait()
        finally:
            self._stopping.set()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _serve(self, name: str, settings: SubscriberSettings) -> None:
        wake = self._wakes[name]
        stopping = asyncio.ensure_future(self._stopping.wait())
        channel = _Channel(
            name,
            settings,
            decode_secret(settings.secrets[0]),
            SubscriberClient(str(settings.url), settings.timeout_seconds),
            asyncio.Semaphore(settings.concurrency),
        )
        try:
            taken: dict[asyncio.Task[Delivery | None], int] = {}  # task -> change cursor
            # Each attempt reports its end here and wakes the loop: waiting on every task
            # in flight instead cost a callback added and removed per task per look.
            ended: list[asyncio.Task[Delivery | None]] = []

            def end(task: asyncio.Task[Delivery | None]) -> None:
                ended.append(task)
                wake.set()

            def start(deliveries: list[Delivery]) -> None:
                busy = set(taken.values())
                for delivery in deliveries:
                    if delivery.change.cursor not in busy:
                        busy.add(delivery.change.cursor)
                        task = asyncio.create_task(self._attempt(channel, delivery))
                        task.add_done_callback(end)
                        taken[task] = delivery.change.cursor

            picked = 0  # the newest change taken as leased to us by its transaction
            claimed = -POLL_SECONDS
            # Beats are writes, which may wait for another process's: in a task of their
            # own, they never hold up the look for deliveries already leased to us.
            beating = asyncio.create_task(self._keep_beating(channel))
            try:
                while not self._stopping.is_set():
                    wake.clear()
                    started = time.monotonic()
                    deliveries = await self._pick_up(channel, picked)
                    picked = max([picked, *(d.change.cursor for d in deliveries)])
                    # Claims find retries now due, expired leases, and changes written while
                    # no worker's heartbeat was fresh: every poll (a message's next change
                    # comes back with the acknowledgement of the one before).
                    if started - claimed >= POLL_SECONDS:
                        claimed = started
                        busy = {*taken.values(), *(d.change.cursor for d in deliveries)}
                        deliveries += await self._pick_up(channel, picked, busy)
                        free = settings.concurrency * CLAIM_FACTOR - len(taken)
                        deliveries += await self._claim(channel, free - len(deliveries))
                    start(deliveries)
                    if not ended:
                        woken = asyncio.ensure_future(wake.wait())
                        await asyncio.wait(
                            {stopping, woken},
                            timeout=PICKUP_SECONDS,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                        woken.cancel()
                    finished, ended[:] = list(ended), []
                    settled = {taken.pop(task) for task in finished}
                    # The next changes their acknowledgements leased to us go at once
                    # (unless a look for leased deliveries found one first and it ended).
                    start(
                        [
                            chained
                            for task in finished
                            if (chained := task.result()) is not None
                            and chained.change.cursor not in settled
                        ]
                    )
                    # Under load commits come every few milliseconds: one look for all
                    # of them costs a read, where one each cost more than the POSTs.
                    await asyncio.sleep(max(0.0, started + COALESCE_SECONDS - time.monotonic()))
            finally:
                await asyncio.gather(beating, return_exceptions=True)
                await self._beat(channel, stopping=True)
                stopping.cancel()
                in_flight, following = set(taken), []
                if in_flight:
                    over, late = await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
                    for task in late:
                        task.cancel()
                    await asyncio.gather(*late, return_exceptions=True)
                    following = [d for task in over if (d := task.result()) is not None]
                for delivery in following:  # not sent: due again at once
                    with contextlib.suppress(StoreUnavailable):
                        await self._store.delivery_handed_back(delivery, self.owner)
        finally:
            channel.client.close()

    async def _keep_beating(self, channel: _Channel) -> None:
        while not self._stopping.is_set():
            await self._beat(channel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HEARTBEAT_SECONDS)

    async def _beat(self, channel: _Channel, stopping: bool = False) -> None:
        """Take the subscriber's new changes straight from their transactions for the
        next few heartbeats (or, ``stopping``, no longer)."""
        now = _now()
        until = now if stopping else now + timedelta(seconds=3 * HEARTBEAT_SECONDS)
        lease_until = until + timedelta(seconds=channel.settings.lease_seconds)
        try:
            await self._store.subscriber_heartbeat(channel.name, self.owner, until, lease_until)
        except StoreUnavailable as exc:
            log.warning("cannot record a heartbeat: %s", exc, extra={"subscriber": channel.name})

    async def _pick_up(
        self, channel: _Channel, picked: int, busy: set[int] | None = None
    ) -> list[Delivery]:
        """The deliveries leased to us after cursor ``picked``; or, given those ``busy``,
        those not busy that the cursor passed: on PostgreSQL, changes whose transactions
        drew their ids first and committed last (a claim would find them only after
        their lease ran out, seconds late)."""
        name, now = channel.name, _now()
        try:
            if busy is None:
                return await self._store.leased_deliveries(name, self.owner, picked, now)
            return await self._store.passed_deliveries(name, self.owner, picked, busy, now)
        except StoreUnavailable as exc:
            log.warning("cannot read deliveries: %s", exc, extra={"subscriber": channel.name})
        return []

    async def _claim(self, channel: _Channel, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        try:
            # A claim is a write transaction; most looks find nothing, which a read
            # tells without taking the write lock (from another process: waiting for it).
            if not await self._store.deliveries_due(channel.name, _now()):
                return []
            return await self._store.claim_deliveries(
                channel.name, self.owner, _now(), channel.settings.lease_seconds, limit
            )
        except StoreUnavailable as exc:
            log.warning("cannot claim deliveries: %s", exc, extra={"subscriber": channel.name})
        except Exception:  # keep the worker alive; the next poll tries again
            log.exception("claiming deliveries failed", extra={"subscriber": channel.name})
        return []

    async def _attempt(self, channel: _Channel, delivery: Delivery) -> Delivery | None:
        """One attempt; a failure to record its outcome leaves it to its lease. The
        message's next change if its acknowledgement leased that to us."""
        try:
            return await self._send(channel, delivery)
        except asyncio.CancelledError:
            with contextlib.suppress(StoreUnavailable):
                await asyncio.shield(self._store.delivery_handed_back(delivery, self.owner))
            raise
        except StoreUnavailable as exc:
            log.warning("cannot record a delivery: %s", exc, extra={"subscriber": channel.name})
        except Exception:
            log.exception("a delivery failed", extra={"subscriber": channel.name})
        return None

    async def _send(self, channel: _Channel, delivery: Delivery) -> Delivery | None:
        """POST (at most ``concurrency`` at once), then record the outcome, which needs
        no slot: the next POST starts while this one's is being committed."""
        name, settings, change = channel.name, channel.settings, delivery.change
        body = webhook_body(change)
        try:
            async with channel.gate:
                headers = signed_headers(channel.key, change.change_id, int(time.time()), body)
                answer = await channel.client.post(headers, body)
        except (PostFailed, TimeoutError) as exc:  # a timeout says nothing of itself
            await self._failed(settings, delivery, f"no answer: {str(exc) or 'timed out'}", None)
            return None
        status = answer.status
        now = _now()
        if 200 <= status < 300:
            acknowledged = await self._store.delivery_done(
                delivery, self.owner, now, settings.lease_seconds
            )
            self._count(name, "delivered")
            if self._metrics is not None:
                self._metrics.observe_latency(name, (now - change.changed_at).total_seconds())
            return acknowledged.next
        if status == 410:
            reason = "answered 410 Gone: disabled until `receiver subscribers redeliver`"
            log.error("subscriber %s %s", name, reason, extra={"subscriber": name})
            await self._store.disable_subscriber(name, reason, now)
            await self._store.delivery_handed_back(delivery, self.owner)
            self._count(name, "gone")
            return None
        retry_after = None
        if status in (429, 503):
            retry_after = retry_after_delay(answer.retry_after, now)
        await self._failed(settings, delivery, f"HTTP {status}", retry_after)
        return None

    async def _failed(
        self,
        settings: SubscriberSettings,
        delivery: Delivery,
        error: str,
        retry_after: float | None,
    ) -> None:
        """Again after ``retry_after`` or backoff, but never past the horizon (the last
        attempt is at it); dead once the horizon has passed."""
        now = _now()
        deadline = delivery.queued_at + timedelta(seconds=settings.retry_horizon_seconds)
        delay = retry_after
        if delay is None:
            delay = backoff_delay(
                delivery.attempts,
                settings.backoff_seconds,
                settings.backoff_max_seconds,
                self._random,
            )
        retry_at = None if now >= deadline else min(now + timedelta(seconds=delay), deadline)
        await self._store.delivery_failed(delivery, self.owner, error, retry_at, now)
        self._count(delivery.subscriber, "retried" if retry_at else "dead")
        if retry_at is None:
            log.warning(
                "change %s dead-lettered after %d attempts: %s",
                delivery.change.change_id,
                delivery.attempts,
                error,
                extra={"subscriber": delivery.subscriber},
            )

    def _count(self, name: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.count(name, outcome)

    async def _watch_health(self) -> None:
        """Keep the backlog gauges current (the store is async, a scrape is not)."""
        if self._metrics is None:
            return
        while not self._stopping.is_set():
            try:
                self._metrics.observe_health(await self._store.subscriber_health(), _now())
            except StoreUnavailable as exc:
                log.warning("cannot read the subscribers' health: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HEALTH_SECONDS)
