"""Retention (``[retention]``): a pruning pass in small batches, and the service's
schedule of passes.

A pass deletes raw requests first, then messages, each as a series of short writer
transactions (a batch is a few milliseconds of the group commit, docs/operations.md), with
a pause between batches so ingest always gets the writer in between. The rules of what
may go are the store's (``receiver.store.retention``); this module only decides when and
how much at a time. ``receiver prune`` runs one pass; ``receiver serve`` runs one at
start and then every ``interval_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.config import RetentionSettings
from receiver.errors import StoreUnavailable
from receiver.records import Pruned
from receiver.store.base import Store

log = logging.getLogger("receiver.retention")

RAW_BATCH = 500
"""Raw requests per transaction."""
MESSAGE_BATCH = 200
"""Messages per transaction (each with a few events)."""
PAUSE_SECONDS = 0.01
"""Between two batches, so queued reports are committed before the next one."""


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What is older than these goes; None keeps that kind forever."""

    raw_requests: datetime | None
    messages: datetime | None

    @classmethod
    def at(cls, retention: RetentionSettings, now: datetime) -> Cutoffs:
        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days else None

        return cls(before(retention.raw_requests_days), before(retention.messages_days))


async def prune(
    store: Store, retention: RetentionSettings, now: datetime, pause: float = PAUSE_SECONDS
) -> Pruned:
    """One full pass as of ``now``: every raw request, then every message, past its
    cut-off; what it deleted."""
    cutoffs = Cutoffs.at(retention, now)
    total = Pruned()
    if cutoffs.raw_requests is not None:
        while True:
            deleted = await store.prune_raw_requests(cutoffs.raw_requests, RAW_BATCH)
            total += Pruned(raw_requests=deleted)
            if deleted < RAW_BATCH:
                break
            await asyncio.sleep(pause)
    if cutoffs.messages is not None:
        while True:
            batch = await store.prune_messages(cutoffs.messages, now, MESSAGE_BATCH)
            total += batch
            if batch.messages < MESSAGE_BATCH:
                break
            await asyncio.sleep(pause)
    return total


async def prunable(store: Store, retention: RetentionSettings, now: datetime) -> Pruned:
    """What ``prune`` would delete as of ``now`` (``receiver prune --dry-run``)."""
    cutoffs = Cutoffs.at(retention, now)
    return await store.count_prunable(cutoffs.raw_requests, cutoffs.messages, now)


def describe(pruned: Pruned) -> str:
    """``120 raw requests, 3 messages (9 events, 1 outbox row, 0 Idempotency-Key answers)``."""

    def count(n: int, one: str, many: str) -> str:
        return f"{n} {one if n == 1 else many}"

    return (
        f"{count(pruned.raw_requests, 'raw request', 'raw requests')},"
        f" {count(pruned.messages, 'message', 'messages')}"
        f" ({count(pruned.events, 'event', 'events')},"
        f" {count(pruned.outbox, 'outbox row', 'outbox rows')},"
        f" {count(pruned.idempotency_keys, 'Idempotency-Key answer', 'Idempotency-Key answers')})"
    )


async def keep_pruning(
    store: Store,
    retention: RetentionSettings,
    clock: Callable[[], datetime],
    on_pass: Callable[[Pruned], None],
) -> None:
    """Prune now and every ``interval_seconds`` until cancelled (``receiver serve``).
    A pass the store cannot finish is logged and tried again at the next interval."""
    if not (retention.raw_requests_days or retention.messages_days):
        return
    while True:
        try:
            pruned = await prune(store, retention, clock())
        except StoreUnavailable as exc:
            log.warning("a retention pass stopped: %s", exc.detail)
        else:
            on_pass(pruned)
            if pruned != Pruned():
                log.info("retention pruned %s", describe(pruned))
        await asyncio.sleep(retention.interval_seconds)
