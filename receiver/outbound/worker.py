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

1. in doubt: settle it first. Where the API can look a message up, look it up by our
   reference; found: record it as sent. Where it cannot, a resend under the same
   idempotency value is the lookup (the provider answers a repeat with the original),
   but only within the lifetime the provider keeps that value (``Sender.
   idempotency_lifetime``) and before ``give_up_seconds``; otherwise the row is *held*
   for a person (``receiver outbox``) and the message shows ``unknown``: it is never
   resent blindly;
2. older than ``give_up_seconds``: it fails (``failed``), unless a lookup (when in
   doubt) finds it at the provider after all;
3. wait for the provider's rate (``rate_per_second``, any pause a 429 asked for, and a
   rate window its ``X-RateLimit-Remaining: 0`` said is used up);
4. obtain credentials if the sender needs a session (one login or refresh at a time
   per provider; a 401 renews them once and repeats the request);
5. send, with our message id as the reference and the idempotency key, and act on
   the outcome:

   ============================================  ===================================
   accepted (2xx with an id, or the provider's   record the provider's id, if it
   "I already have it")                          said one (``outbox_sent``)
   rejected (4xx about the message)              ``rejected`` with the provider's error
   deferred (429, 401/403/404/405, 408, 425,     try again after ``Retry-After`` (a
   connection refused, connect timeout)          429 pauses the provider), else backoff
   unknown (5xx, 409, read timeout, dropped      try again after backoff (or the
   connection, unreadable 2xx)                   answer's ``Retry-After``, for this
                                                 message only), *in doubt*: step 1
                                                 comes first
   ============================================  ===================================

An attempt never outlives its lease (``OutboxSettings.lease_seconds``, three request
times): every HTTP exchange is cut off after connect + read timeout, and a rate wait
longer than half of that hands the row back for later instead.

A provider's ``rate_per_second`` is counted in the store (``Store.take_rate``, key
``provider:NAME``), so every worker process on one database shares it: N workers send
at most ``rate_per_second`` together. The pauses a 429 or an exhausted window asked
for are this process's (each worker meets the provider's answer itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from receiver.config import Config
from receiver.core.ratelimit import Rate, to_ns
from receiver.core.status import Status
from receiver.errors import Conflict, StoreUnavailable
from receiver.outbound.retry import backoff_delay, exhausted_window_delay, retry_after_delay
from receiver.providers.base import (
    PERMANENT,
    Accepted,
    ApiClient,
    Deferred,
    LookupResult,
    NoSuchMessage,
    Provider,
    Rejected,
    Sender,
    SendResult,
    Unknown,
    http_reason,
)
from receiver.records import OutboxItem
from receiver.store.base import Store, new_id

log = logging.getLogger("receiver.outbound")

MAX_IN_FLIGHT = 16
STOP_GRACE_SECONDS = 5.0
MAX_AUTH_REQUESTS = 2
"""A refresh that fails is followed by one login; more would be a loop."""
KEY_LIFETIME_MARGIN = timedelta(hours=1)
"""A resend under an idempotency key stops this long before the provider forgets the key:
its clock and ours differ, and the request takes time to arrive."""

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


@dataclass(frozen=True, slots=True)
class Pacing(Deferred):
    """The worker held a request back itself (the provider is paused, or its rate is
    used up) for longer than an attempt may hold its row: the row comes back when the
    wait is over. It never pauses the provider again: rows handed back during a pause
    would otherwise each push the pause to ``now + ceil(wait)``, and with rows due all
    the time the pause would never end."""


class OutboxWorker:
    """Sends the outbox of one store through the configured providers' senders."""

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        owner: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` carries the requests to the providers (default: the network)."""
        self.owner = owner or new_id("wkr_")
        self._transport = transport
        self._store = store
        self._settings = config.settings.outbox
        public_base_url = config.settings.public_base_url
        self._senders: dict[str, Sender] = {}
        self._rates: dict[str, Rate] = {}
        for name, provider in config.providers.items():
            # Lookups (the reconciler) keep the rate of types that cannot send, too.
            if provider.config.rate_per_second is not None:
                self._rates[name] = Rate(provider.config.rate_per_second, burst=1)
            sender = provider.sender(str(public_base_url) if public_base_url else None)
            if sender is None:
                continue
            self._senders[name] = sender
        self._paused_until: dict[str, float] = {}
        self._auth_locks: dict[str, asyncio.Lock] = {}
        self._request_seconds = (
            self._settings.connect_timeout_seconds + self._settings.read_timeout_seconds
        )
        self._give_up = timedelta(seconds=self._settings.give_up_seconds)
        self._stopping = asyncio.Event()
        self._random = random.Random()  # noqa: S311 - jitter, not a secret

    def api_client(self, provider: Provider) -> ApiClient | None:
        """What asks ``provider`` about a message's status: this worker's sender for it
        when that can (one session for sends and lookups), else the type's own."""
        sender = self._senders.get(provider.name)
        if sender is not None and sender.looks_up_status:
            return sender
        return provider.status_client()

    async def exchange(
        self,
        client: httpx.AsyncClient,
        provider: str,
        api: ApiClient,
        build: Callable[[], httpx.Request],
    ) -> httpx.Response | Deferred | Unknown:
        """One request to ``provider``'s API at the pace this worker keeps for it (its
        rate, its pauses, its session): the reconciler's lookups share them with sends,
        as they share the provider's limits. ``Pacing`` when the wait would be long."""
        return await self._exchange(client, provider, api, build)

    def pause(self, provider: str, seconds: float) -> None:
        """Hold every request to ``provider`` for ``seconds`` (its 429 asked us to)."""
        until = time.monotonic() + seconds
        self._paused_until[provider] = max(self._paused_until.get(provider, 0.0), until)

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
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, transport=self._transport
        ) as client:
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
        found: LookupResult = NoSuchMessage()
        if sender is not None and item.in_doubt:
            if sender.lookup_request(item) is not None:
                found = await self._lookup(client, sender, item)
            elif unsettled := self._unsettled(sender, item):
                # No lookup, and a resend could make a second message: a person decides.
                await self._hold(item, unsettled)
                return
        if isinstance(found, Accepted):
            await self._record_outcome(item, found)
        elif _now() - item.created_at >= self._give_up:
            await self._fail(item, found)
        elif sender is None:  # the config changed since it was accepted; it may change back
            reason = f"provider {item.provider!r} is not configured to send"
            await self._record_outcome(item, Deferred(reason))
        elif isinstance(found, Deferred):
            await self._record_outcome(item, found, in_doubt=True)
        else:
            await self._record_outcome(item, await self._send(client, sender, item))

    def _unsettled(self, sender: Sender, item: OutboxItem) -> str | None:
        """Why an attempt in doubt cannot be settled by sending again under the same
        idempotency value (the provider's answer to a repeat is the original one); None
        when it can. Past ``give_up_seconds`` nothing is sent any more, so it cannot."""
        lifetime = sender.idempotency_lifetime
        if lifetime is None:
            return (
                f"an earlier attempt may have reached provider {item.provider!r}, which can"
                " neither look a message up by our reference nor recognise a repeated send;"
                " check with the provider, then `receiver outbox resend` or `give-up`"
            )
        now = _now()
        if now - item.created_at >= self._give_up:
            return (
                f"an earlier attempt may have reached provider {item.provider!r}, and the"
                f" message is past give_up_seconds ({self._settings.give_up_seconds:g} s),"
                " so it is not sent again to find out"
            )
        if lifetime is PERMANENT:
            return None
        first = item.first_attempt_at or item.created_at
        if now >= first + lifetime - KEY_LIFETIME_MARGIN:
            return (
                f"an earlier attempt may have reached provider {item.provider!r}, and the"
                f" provider forgets our idempotency key {lifetime} after the first attempt,"
                " so a resend could send it twice"
            )
        return None

    async def _lookup(
        self, client: httpx.AsyncClient, sender: Sender, item: OutboxItem
    ) -> LookupResult:
        def lookup() -> httpx.Request:
            request = sender.lookup_request(item)
            assert request is not None  # checked by the caller
            return request

        answer = await self._exchange(client, item.provider, sender, lookup)
        if isinstance(answer, httpx.Response):
            return sender.read_lookup(item, answer)
        return Deferred(f"the lookup failed: {answer.reason}")

    async def _send(
        self, client: httpx.AsyncClient, sender: Sender, item: OutboxItem
    ) -> SendResult:
        answer = await self._exchange(
            client, item.provider, sender, functools.partial(sender.send_request, item)
        )
        return sender.read_send(answer) if isinstance(answer, httpx.Response) else answer

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        provider: str,
        sender: ApiClient,
        build: Callable[[], httpx.Request],
    ) -> httpx.Response | Deferred | Unknown:
        """One request to ``provider`` at its pace, with fresh credentials once more if
        it answers 401 to the ones in hand; a transport failure as Deferred (it never
        arrived) or Unknown (it may have)."""
        wait = await self._pace(provider)
        if wait > 0:
            return Pacing("waiting for the provider's rate limit", str(math.ceil(wait)))
        try:
            async with asyncio.timeout(self._request_seconds):
                if problem := await self._authenticate(client, provider, sender):
                    return problem
                request = build()
                response = await client.send(request)
                if response.status_code == 401 and sender.unauthorized(request):
                    if problem := await self._authenticate(client, provider, sender):
                        return problem
                    request = build()
                    response = await client.send(request)
        except NOT_SENT as exc:
            return Deferred(_describe(exc))
        except (httpx.HTTPError, TimeoutError) as exc:
            return Unknown(_describe(exc))
        self._hold_for_window(provider, response)
        return response

    async def _authenticate(
        self, client: httpx.AsyncClient, provider: str, sender: ApiClient
    ) -> Deferred | None:
        """Obtain or renew the sender's credentials if it asks to (one renewal at a time
        per provider: a rotating refresh token must not be spent twice); a Deferred if
        that failed. Transport errors propagate: nothing was sent to the provider yet."""
        async with self._auth_locks.setdefault(provider, asyncio.Lock()):
            for made in range(MAX_AUTH_REQUESTS + 1):  # the last pass only asks
                request = sender.auth_request(_now())
                if request is None:
                    return None
                if made == MAX_AUTH_REQUESTS:
                    break
                response = await client.send(request)
                self._hold_for_window(provider, response)
                try:
                    sender.read_auth(response, _now())
                except ValueError as exc:
                    reason = f"could not obtain credentials: {http_reason(response)}: {exc}"
                    return Deferred(reason, response.headers.get("retry-after"))
            return Deferred("could not obtain credentials: the provider kept asking for more")

    def _hold_for_window(self, provider: str, response: httpx.Response) -> None:
        """Pause ``provider`` until its rate window resets when an answer says none of it
        is left, so that the next request does not earn a 429."""
        wait = exhausted_window_delay(response.headers, _now())
        if wait:
            until = time.monotonic() + wait
            self._paused_until[provider] = max(self._paused_until.get(provider, 0.0), until)

    async def _pace(self, provider: str) -> float:
        """Wait until ``provider`` may be called (its rate, a pause a 429 asked for).
        0 once it may; else the wait left, when longer than an attempt can hold a row."""
        rate = self._rates.get(provider)
        budget = time.monotonic() + self._request_seconds / 2
        while True:
            now = time.monotonic()
            wait = self._paused_until.get(provider, now) - now
            if wait <= 0:
                if rate is None:
                    return 0.0
                decision = await self._store.take_rate(
                    f"provider:{provider}", rate, to_ns(time.time())
                )
                if decision.allowed:
                    return 0.0
                wait = decision.retry_after
            if now + wait > budget:
                return wait
            await asyncio.sleep(wait)

    async def _record_outcome(
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
        asked = retry_after_delay(result.retry_after, now)
        if isinstance(result, Deferred) and not isinstance(result, Pacing) and asked is not None:
            # Its 429 holds every request to it.
            self._paused_until[item.provider] = time.monotonic() + asked
            delay = asked
        elif asked is not None:  # our own pacing, or about this message alone (its key)
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

    async def _hold(self, item: OutboxItem, reason: str) -> None:
        log.warning("held a message for a person: %s", reason, extra=_fields(item))
        if not await self._store.outbox_hold(item, self.owner, reason, _now()):
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
        if recorded and accepted.provider_message_id is None:
            log.info(
                "handed to the provider, which did not say its id: the first report will",
                extra=_fields(item),
            )
        elif recorded:
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


__all__ = ["NOT_SENT", "OutboxWorker", "Pacing"]
