"""``receiver subscribers list`` and ``receiver subscribers redeliver`` (README
"Status change feed"): the change feed's subscribers, beside a running service on the same file."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from receiver.config import Config, load_existing
from receiver.errors import UsageError
from receiver.feed.worker import routes
from receiver.records import SubscriberHealth
from receiver.store import open_store
from receiver.store.sql import SqlStore
from receiver.tools.replay import _moment

HEADER = "NAME\tSTATE\tBACKLOG\tOLDEST PENDING\tDEAD\tLAST ERROR"


def _row(health: SubscriberHealth, now: datetime) -> str:
    state = "active"
    if health.disabled_at is not None:
        state = f"disabled since {health.disabled_at:%Y-%m-%dT%H:%M:%SZ}"
    oldest = "-"
    if health.oldest_pending is not None:
        age = max(0.0, (now - health.oldest_pending).total_seconds())
        oldest = f"{health.oldest_pending:%Y-%m-%dT%H:%M:%SZ} ({age:.0f} s ago)"
    last_error = "-"
    if health.last_error is not None and health.last_error_at is not None:
        last_error = f"{health.last_error_at:%Y-%m-%dT%H:%M:%SZ} {health.last_error}"
    return f"{health.name}\t{state}\t{health.backlog}\t{oldest}\t{health.dead}\t{last_error}"


async def _open(config: Config) -> SqlStore:
    """The store, with the configured subscribers recorded (as the service does)."""
    store = open_store(config.store_url)
    await store.open()
    try:
        await store.sync_subscribers(routes(config))
    except BaseException:
        await store.close()
        raise
    return store


async def _list(config: Config) -> int:
    store = await _open(config)
    try:
        health = await store.subscriber_health()
    finally:
        await store.close()
    now = datetime.now(UTC)
    print(HEADER)
    for subscriber in health:
        print(_row(subscriber, now))
    return 0


async def _redeliver(config: Config, args: argparse.Namespace) -> int:
    since = _moment(args.since, "--since") if args.since else None
    if args.name not in config.settings.subscribers:
        raise UsageError(f"no subscriber named {args.name!r} in {config.source}")
    store = await _open(config)
    try:
        queued = await store.redeliver(args.name, since, args.dead, datetime.now(UTC))
    finally:
        await store.close()
    what = "dead-lettered changes" if args.dead else "changes"
    print(f"{args.name}: {queued} {what} queued again; the subscriber is enabled")
    return 0


def run(args: argparse.Namespace) -> int:
    config = load_existing(args.config)
    if args.subscribers_command == "list":
        return asyncio.run(_list(config))
    return asyncio.run(_redeliver(config, args))


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register ``subscribers list|redeliver`` on the CLI's subparsers."""
    subscribers = commands.add_parser(
        "subscribers", help="the status change feed's subscribers ([subscribers.NAME])"
    )
    actions = subscribers.add_subparsers(dest="subscribers_command", required=True)
    listing = actions.add_parser(
        "list", help="each subscriber's state, backlog, oldest pending change, last error"
    )
    redeliver = actions.add_parser(
        "redeliver",
        help="queue changes for a subscriber again (and enable it after a 410 Gone)",
        description="Without --dead: every change its filters match (since --since), "
        "delivered or not, is queued again in order. With --dead: only its dead letters.",
    )
    redeliver.add_argument("name", metavar="NAME")
    redeliver.add_argument("--since", metavar="ISO", help="only changes made at or after this")
    redeliver.add_argument("--dead", action="store_true", help="only dead-lettered changes")
    for sub in (listing, redeliver):
        sub.add_argument("--config", help=config_help)
        sub.set_defaults(run=run)


__all__ = ["add_commands"]
