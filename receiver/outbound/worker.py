"""The outbox worker: claims due outbox rows and hands each message to its provider.

Theory of operation
-------------------
Rows are claimed with a lease (``Store.claim_outbox``), so any number of workers in any
number of processes can share one store: only the lease holder acts on a row, and
every write checks the lease. A worker that dies mid-attempt leaves its lease to run
out; the row is then claimed again *in doubt*, as is every row whose last attempt
may have reached the provider.

An attempt at one row, with the provider's sans-IO ``Sender`` building the requests
and reading the answers:

1. older than ``give_up_seconds``: it fails (``failed``), unless a lookup (when in
   doubt) finds it at the provider after all;
2. in doubt: look the message up by our reference first; found: record it as sent;
3. wait for the provider's rate (``rate_per_second``, and any pause a 429 asked for);
4. send, with our message id as the reference and the idempotency key, and act on
   the outcome:

   ==========================================  =====================================
   accepted (2xx with an id)                   record the provider's id (``outbox_sent``)
   rejected (4xx about the message)            ``rejected`` with the provider's error
   deferred (429, 401/403/404/405, 408, 425,   try again after ``Retry-After`` (a 429
   connection refused, connect timeout)        pauses the provider), else backoff
   unknown (5xx, 409, read timeout, dropped    try again after backoff, *in doubt*:
   connection, unreadable 2xx)                 step 2 comes first
   ==========================================  =====================================

An attempt never outlives its lease (``OutboxSettings.lease_seconds``, three request
times): every HTTP exchange is cut off after connect + read timeout, and a rate wait
longer than half of that hands the row back for later instead.

Rates are per process: N workers on one provider send up to N x ``rate_per_second``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from datetime import UTC, datetime, timedelta

import httpx

from receiver.config import Config
from receiver.core.ratelimit import RateLimiter
from receiver.core.status import Status
from receiver.errors import Conflict, StoreUnavailable
from receiver.outbound.retry import backoff_delay, retry_after_delay
from receiver.providers.base import (
    Accepted,
    Deferred,
    LookupResult,
    NotFound,
    Rejected,
    Sender,
    SendResult,
    Unknown,
)
from receiver.store.base import OutboxItem, Store, new_id

log = logging.getLogger("receiver.outbound")

MAX_IN_FLIGHT = 16
STOP_GRACE_SECONDS = 5.0

NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)
"""Transport failures before the request could leave: it certainly never arrived. Any
other failure (read timeout, dropped connection, ...) may have come after it arrived."""


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxWorker:
    """Sends the outbox of one store through the configured providers' senders."""

    def __init__(self, store: Store, config: Config, *, owner: str | None = None) -> None:
        self.owner = owner or new_id("wkr_")
        self._store = store
        self._settings = config.settings.outbox
        public_base_url = config.settings.public_base_url
        self._senders: dict[str, Sender] = {}
        self._rates: dict[str, RateLimiter] = {}
        for name, provider in config.providers.items():
            sender = provider.sender(str(public_base_url) if public_base_url else None)
            if sender is None:
                continue
            self._senders[name] = sender
            if provider.config.rate_per_second is not None:
                self._rates[name] = RateLimiter(provider.config.rate_per_second, burst=1)
        self._paused_until: dict[str, float] = {}
        self._request_seconds = (
            self._settings.connect_timeout_seconds + self._settings.read_timeout_seconds
        )
        self._give_up = timedelta(seconds=self._settings.give_up_seconds)
        self._stopping = asyncio.Event()
        self._random = random.Random()  # noqa: S311 - jitter, not a secret

    def stop(self) -> None:
        """Ask ``run`` to return: no new claims; in-flight attempts get a short grace."""
        self._stopping.set()

    async def run(self) -> None:
        """Claim and send until ``stop()``. Attempts still running STOP_GRACE_SECONDS
        after it are cancelled, and their rows handed back in doubt."""
        timeout = httpx.Timeout(
            self._settings.read_timeout_seconds,
            connect=self._settings.connect_timeout_seconds,
        )
        in_flight: set[asyncio.Task[None]] = set()
        stopping = asyncio.ensure_future(self._stopping.wait())
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            try:
                while not self._stopping.is_set():
                    for item in await self._claim(MAX_IN_FLIGHT - len(in_flight)):
                        in_flight.add(asyncio.create_task(self._attempt(client, item)))
                    done, _ = await asyncio.wait(
                        {stopping, *in_flight},
                        timeout=self._settings.poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    in_flight -= done
            finally:
                stopping.cancel()
                if in_flight:
                    _, late = await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
                    for task in late:
                        task.cancel()
                    await asyncio.gather(*late, return_exceptions=True)

    async def _claim(self, limit: int) -> list[OutboxItem]:
        if limit <= 0:
            return []
        try:
            return await self._store.claim_outbox(
                self.owner, _now(), self._settings.lease_seconds, limit
            )
        except StoreUnavailable as exc:
            log.warning("cannot claim outbox rows: %s", exc)
        except Exception:  # keep the worker alive; the next poll tries again
            log.exception("claiming outbox rows failed")
        return []

    async def _attempt(self, client: httpx.AsyncClient, item: OutboxItem) -> None:
        """One attempt; any failure leaves the row to its lease (then it is in doubt)."""
        try:
            await self._try(client, item)
        except asyncio.CancelledError:
            # Stopping mid-attempt: the request may be out. Hand the row back in doubt
            # now, rather than leave the next worker to wait for the lease.
            with contextlib.suppress(StoreUnavailable):
                await asyncio.shield(
                    self._store.outbox_retry(
                        item, self.owner, _now(), "the worker stopped mid-attempt", True
                    )
                )
            raise
        except StoreUnavailable as exc:
            log.error("cannot record an outbox attempt: %s", exc, extra=_fields(item))
        except Exception:
            log.exception("an outbox attempt failed", extra=_fields(item))

    async def _try(self, client: httpx.AsyncClient, item: OutboxItem) -> None:
        sender = self._senders.get(item.provider)
        found: LookupResult = NotFound()
        if sender is not None and item.in_doubt:
            found = await self._lookup(client, sender, item)
        if isinstance(found, Accepted):
            await self._settle(item, found)
        elif _now() - item.created_at >= self._give_up:
            await self._fail(item, found)
        elif sender is None:  # the config changed since it was accepted; it may change back
            reason = f"provider {item.provider!r} is not configured to send"
            await self._settle(item, Deferred(reason))
        elif isinstance(found, Deferred):
            await self._settle(item, found, in_doubt=True)
        else:
            await self._settle(item, await self._send(client, sender, item))

    async def _lookup(
        self, client: httpx.AsyncClient, sender: Sender, item: OutboxItem
    ) -> LookupResult:
        answer = await self._exchange(client, item.provider, sender.lookup_request(item))
        if isinstance(answer, httpx.Response):
            return sender.read_lookup(item, answer)
        return Deferred(f"the lookup failed: {answer.reason}")

    async def _send(
        self, client: httpx.AsyncClient, sender: Sender, item: OutboxItem
    ) -> SendResult:
        answer = await self._exchange(client, item.provider, sender.send_request(item))
        return sender.read_send(answer) if isinstance(answer, httpx.Response) else answer

    async def _exchange(
        self, client: httpx.AsyncClient, provider: str, request: httpx.Request
    ) -> httpx.Response | Deferred | Unknown:
        """One request to ``provider`` at its pace; a transport failure as Deferred (it
        never arrived) or Unknown (it may have)."""
        wait = await self._pace(provider)
        if wait > 0:
            return Deferred("waiting for the provider's rate limit", str(math.ceil(wait)))
        try:
            async with asyncio.timeout(self._request_seconds):
                return await client.send(request)
        except NOT_SENT as exc:
            return Deferred(_describe(exc))
        except (httpx.HTTPError, TimeoutError) as exc:
            return Unknown(_describe(exc))

    async def _pace(self, provider: str) -> float:
        """Wait until ``provider`` may be called (its rate, a pause a 429 asked for).
        0 once it may; else the wait left, when longer than an attempt can hold a row."""
        rate = self._rates.get(provider)
        budget = time.monotonic() + self._request_seconds / 2
        while True:
            now = time.monotonic()
            wait = self._paused_until.get(provider, now) - now
            if wait <= 0:
                decision = rate.acquire(provider) if rate is not None else None
                if decision is None or decision.allowed:
                    return 0.0
                wait = decision.retry_after
            if now + wait > budget:
                return wait
            await asyncio.sleep(wait)

    async def _settle(
        self, item: OutboxItem, result: SendResult, *, in_doubt: bool = False
    ) -> None:
        """Record an attempt's outcome; ``in_doubt``: the message may be at the provider."""
        now = _now()
        if isinstance(result, Accepted):
            await self._record_sent(item, result, now)
            return
        if isinstance(result, Rejected):
            log.warning(
                "the provider rejected a message: %s %s",
                result.error_code,
                result.error_message,
                extra=_fields(item),
            )
            await self._store.outbox_failed(
                item, self.owner, Status.REJECTED, result.error_code, result.error_message, now
            )
            return
        delay = backoff_delay(
            item.attempts,
            self._settings.backoff_seconds,
            self._settings.backoff_max_seconds,
            self._random,
        )
        if isinstance(result, Deferred):
            asked = retry_after_delay(result.retry_after, now)
            if asked is not None:  # its 429 (or our own rate) holds every request to it
                self._paused_until[item.provider] = time.monotonic() + asked
                delay = asked
        in_doubt = in_doubt or isinstance(result, Unknown)
        # Capped first: a Retry-After of centuries would overflow the datetime, and the
        # attempt is due by the give-up time anyway (created_at is never after now).
        delay = min(delay, self._give_up.total_seconds())
        at = min(now + timedelta(seconds=delay), item.created_at + self._give_up)
        log.info(
            "outbox attempt %d: %s; next at %s%s",
            item.attempts,
            result.reason,
            at.isoformat(timespec="seconds"),
            " (in doubt)" if in_doubt else "",
            extra=_fields(item),
        )
        if not await self._store.outbox_retry(item, self.owner, at, result.reason, in_doubt):
            log.warning("lost the lease of an outbox row", extra=_fields(item))

    async def _record_sent(self, item: OutboxItem, accepted: Accepted, now: datetime) -> None:
        try:
            recorded = await self._store.outbox_sent(
                item, self.owner, accepted.provider_message_id, accepted.provider_status, now
            )
        except Conflict as exc:
            # The provider named a message we already hold for another send (a lookup
            # that matched the wrong one, or a provider reusing ids): a person must look.
            log.error("the provider's id is another message's: %s", exc, extra=_fields(item))
            await self._store.outbox_failed(item, self.owner, Status.FAILED, None, exc.detail, now)
            return
        if recorded:
            log.info("handed to the provider", extra=_fields(item))
        else:
            log.warning("lost the lease of an outbox row", extra=_fields(item))

    async def _fail(self, item: OutboxItem, lookup: LookupResult) -> None:
        """Give up on a message too old to send (a lookup, if it was in doubt, did not
        find it at the provider or failed)."""
        reason = f"not handed to the provider within {self._settings.give_up_seconds:g} s"
        if item.last_error:
            reason += f"; last error: {item.last_error}"
        if isinstance(lookup, Deferred):
            reason += f"; {lookup.reason}"
        log.warning("gave up on a message: %s", reason, extra=_fields(item))
        await self._store.outbox_failed(item, self.owner, Status.FAILED, None, reason, _now())


def _fields(item: OutboxItem) -> dict[str, object]:
    return {"message_id": item.message_id, "provider": item.provider, "attempt": item.attempts}


def _describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


__all__ = ["NOT_SENT", "OutboxWorker"]
