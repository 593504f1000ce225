"""``receiver reconcile``: one reconcile pass by hand (README "Missing reports").

After an outage: ``receiver reconcile --since 2026-11-23T10:00Z --until
2026-11-23T14:00Z`` asks the providers about every overdue message sent in that window,
whatever its backoff, beside a running service (the store's leases keep the two from
asking about one message at once). ``--dry-run`` only counts them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from receiver import logs
from receiver.config import Config, load_existing
from receiver.errors import UsageError
from receiver.outbound.reconcile import PassSummary, Reconciler
from receiver.outbound.worker import OutboxWorker
from receiver.records import ReconcileWindow
from receiver.store import open_store
from receiver.tools.replay import _moment


def _progress(total: int) -> AbstractContextManager[Any]:
    if not sys.stderr.isatty() or not total:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=False)


async def _reconcile(
    config: Config, providers: list[str], window: ReconcileWindow, dry_run: bool
) -> tuple[dict[str, int], PassSummary | None]:
    store = open_store(config.store_url)
    await store.open(ingest=not dry_run)
    try:
        reconciler = Reconciler(store, config, OutboxWorker(store, config))
        cutoffs = reconciler.cutoffs(datetime.now(UTC), providers)
        counts = {c.provider: c.overdue for c in await store.overdue_counts(cutoffs, window)}
        if dry_run:
            return counts, None
        with _progress(sum(counts.values())) as progress:
            task = (
                progress.add_task("reconciling", total=sum(counts.values())) if progress else None
            )

            def advance(done: int) -> None:
                if progress is not None:
                    progress.advance(task, done)

            async with reconciler.client() as client:
                summary = await reconciler.run_pass(
                    client, providers=providers, window=window, progress=advance
                )
        return counts, summary
    finally:
        await store.close()


def run_reconcile(args: argparse.Namespace) -> int:
    config = load_existing(args.config)
    if args.provider is not None and args.provider not in config.providers:
        known = ", ".join(sorted(config.providers)) or "none"
        raise UsageError(f"--provider {args.provider!r} is not configured (configured: {known})")
    since = _moment(args.since, "--since") if args.since else None
    until = _moment(args.until, "--until") if args.until else None
    if since is not None and until is not None and since >= until:
        raise UsageError("--since must be before --until")
    providers = [args.provider] if args.provider else list(config.providers)
    window = ReconcileWindow(since, until, due_only=False)
    logs.configure()
    counts, summary = asyncio.run(_reconcile(config, providers, window, args.dry_run))
    for name, count in counts.items():
        lookups = "looks up" if config.providers[name].looks_up() else "no lookup"
        print(f"{name}\t{count} overdue\t({lookups})")
    if summary is None:
        print(f"dry run: {sum(counts.values())} overdue message(s); nothing asked or changed")
    else:
        print(f"reconciled {summary.describe()}")
    return 0


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register ``reconcile`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "reconcile",
        help="ask the providers about messages whose final report is overdue (one pass)",
        description="One pass over the overdue messages (not final, no report for the "
        "provider's report_timeout_seconds): look each up at its provider's API where it "
        "can, record our verdict unknown / NO_FINAL_REPORT past report_give_up_seconds, "
        "and print a summary.",
    )
    parser.add_argument("--provider", metavar="NAME", help="only this provider")
    parser.add_argument("--since", metavar="ISO", help="messages created at or after this time")
    parser.add_argument("--until", metavar="ISO", help="messages created before this time")
    parser.add_argument(
        "--dry-run", action="store_true", help="count the overdue messages; ask and change nothing"
    )
    parser.add_argument("--config", help=config_help)
    parser.set_defaults(run=run_reconcile)


__all__ = ["add_commands"]
