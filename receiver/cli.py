"""The ``receiver`` command: serve, worker, staff (README "Commands"); the other
commands come from ``receiver.tools``.

Exit codes: 0 success, 2 bad usage or bad config (one line on stderr naming the
file, key and problem), 1 any other failure.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from receiver import __version__, logs
from receiver.auth import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    ROLES,
    hash_password,
    hash_token,
    new_token,
)
from receiver.config import Config, load_existing, resolve_path, write_default
from receiver.errors import ConfigError, Conflict, ReceiverError, UsageError
from receiver.store import open_store

log = logging.getLogger("receiver")
_CONFIG_HELP = "config file (default: $RECEIVER_CONFIG or ./receiver.toml)"
_STAFF_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="receiver", description="Receive SMS delivery-report webhooks."
    )
    parser.add_argument("--version", action="version", version=f"receiver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--config", help=_CONFIG_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="worker processes serving the one address, each with its own store connection"
        ' and background work (default 1; README "Scaling out")',
    )

    worker = commands.add_parser("worker", help="run the outbox worker alone (sends messages)")
    worker.add_argument("--config", help=_CONFIG_HELP)

    staff = commands.add_parser("staff", help="manage staff and API-client tokens")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_commands.add_parser("add", help="create a token; prints only the token")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    listing = staff_commands.add_parser("list", help="list staff (never their tokens)")
    revoke = staff_commands.add_parser("revoke", help="revoke a staff member's token")
    revoke.add_argument("name")
    passwd = staff_commands.add_parser(
        "passwd",
        help="set a console password (prompts twice; reads one line when stdin is not a TTY)",
    )
    passwd.add_argument("name")
    for sub in (add, listing, revoke, passwd):
        sub.add_argument("--config", help=_CONFIG_HELP)

    outbox = commands.add_parser(
        "outbox", help="messages held for a person because a send may have reached the provider"
    )
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    held = outbox_commands.add_parser("held", help="list the held messages, oldest first")
    resend = outbox_commands.add_parser(
        "resend", help="send a held message again (you checked: the provider never got it)"
    )
    resend.add_argument("message_id")
    give_up = outbox_commands.add_parser(
        "give-up", help="fail a held message (it is not sent again)"
    )
    give_up.add_argument("message_id")
    for sub in (resend, give_up):
        sub.add_argument("--reason", default=None, help="recorded in the message's timeline")
    for sub in (held, resend, give_up):
        sub.add_argument("--config", help=_CONFIG_HELP)

    from receiver.tools import maintenance, migrate, reconcile, replay, simulate, subscribers

    replay.add_commands(commands, config_help=_CONFIG_HELP)
    simulate.add_commands(commands, config_help=_CONFIG_HELP)
    maintenance.add_commands(commands, config_help=_CONFIG_HELP)
    reconcile.add_commands(commands, config_help=_CONFIG_HELP)
    subscribers.add_commands(commands, config_help=_CONFIG_HELP)
    migrate.add_commands(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from receiver import serving
    from receiver.app import create_app
    from receiver.http.edge import EdgeProtocol, descriptor_budget

    workers = _worker_count(args.workers)  # before anything is written: bad usage writes nothing
    path, named = resolve_path(args.config)
    if not named and not path.exists():
        _check_workers(workers, on_sqlite=True)  # the new config's store is SQLite
        write_default(path, host=args.host, port=args.port)
        print(f"receiver: wrote a new config to {path.resolve()} (mode 0600)", flush=True)
        print(f"receiver: webhook URL http://{args.host}:{args.port}/webhooks/default", flush=True)
    config = load_existing(args.config)
    _check_workers(workers, on_sqlite=config.on_sqlite)
    serving.prepare_process()
    # Refuse now, in one line, a store the app's startup would fail to open (uvicorn
    # would log a traceback): a folder not writable, not a database, PostgreSQL away.
    asyncio.run(_open_and_close(config))
    _, backlog = descriptor_budget(None)
    for name in config.insecure_providers:
        log.warning(
            "provider %s has insecure_no_signature = true: its webhooks are NOT verified",
            name,
            extra={"provider": name},
        )
    log.info(
        "serving on http://%s:%d with %s",
        args.host,
        args.port,
        config.store_name,
        extra={"providers": sorted(config.providers), "workers": workers},
    )
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,  # X-Forwarded-* is judged by our trusted_proxies instead
        "server_header": False,
        "http": EdgeProtocol,  # header limits, timeouts, load shedding (receiver.http.edge)
        "ws": "none",  # no route is a WebSocket; an upgrade would leave the edge's limits
        "backlog": backlog,
    }
    if workers > 1:
        return serving.run_workers(path, workers, options)
    app = create_app(config)
    serving.tune_gc()
    uvicorn.run(app, workers=1, **options)  # named: else uvicorn reads WEB_CONCURRENCY
    return 0


async def _open_and_close(config: Config) -> None:
    """Open the store (migrating its schema) and close it again."""
    store = open_store(config.store_url)
    await store.open()
    await store.close()


def _check_workers(workers: int, *, on_sqlite: bool) -> None:
    """Refuse ``--workers`` above 1 on SQLite (one line), unless the override is set."""
    from receiver import serving

    if workers > 1 and on_sqlite and os.environ.get(serving.SQLITE_WORKERS_ENV) != "1":
        raise UsageError(
            "--workers above 1 does not pay on SQLite, which commits one writer at a time"
            ' (docs/performance.md, "Several workers on SQLite"): run one process, use'
            f" PostgreSQL, or set {serving.SQLITE_WORKERS_ENV}=1 to run {workers} anyway"
        )


def _worker_count(text: str) -> int:
    """``--workers``: a whole number of at least 1, else UsageError (one line)."""
    count = int(text) if text.strip().isdecimal() else 0
    if count < 1:
        raise UsageError(f"--workers must be a whole number of at least 1, not {text!r}")
    return count


async def _work(config: Config) -> int:
    """Send the outbox, reconcile overdue messages and deliver the change feed until
    SIGTERM or SIGINT; in-flight sends, lookups and deliveries finish first."""
    from receiver.feed.worker import DeliveryWorker
    from receiver.outbound.reconcile import Reconciler
    from receiver.outbound.worker import OutboxWorker

    logs.configure()
    store = open_store(config.store_url)
    await store.open()
    try:
        worker = OutboxWorker(store, config)
        reconciler = Reconciler(store, config, worker)
        deliverer = DeliveryWorker(store, config)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            worker.stop()
            reconciler.stop()
            deliverer.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        log.info("outbox worker %s sending from %s", worker.owner, config.store_name)
        await asyncio.gather(worker.run(), reconciler.run(), deliverer.run())
    finally:
        await store.close()
    log.info("outbox worker stopped")
    return 0


def _read_password(name: str) -> str:
    """A new console password: asked twice on a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"New console password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise UsageError(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise UsageError(f"a password has at most {PASSWORD_MAX_LENGTH} characters")
    return password


async def _staff(config: Config, args: argparse.Namespace) -> int:
    store = open_store(config.store_url)
    await store.open(ingest=False)
    try:
        if args.staff_command == "add":
            if not _STAFF_NAME.fullmatch(args.name):
                raise UsageError(f"staff name {args.name!r} must be 1-64 of A-Z a-z 0-9 . _ @ + -")
            token = new_token()
            try:
                await store.add_staff(args.name, args.role, hash_token(token))
            except Conflict:
                raise UsageError(
                    f"staff {args.name!r} already exists (revoke it first to issue a new token)"
                ) from None
            print(token)
        elif args.staff_command == "list":
            for member in await store.list_staff():
                state = f"revoked {member.revoked_at:%Y-%m-%d}" if member.revoked_at else "active"
                print(f"{member.name}\t{member.role}\t{member.created_at:%Y-%m-%d}\t{state}")
        elif args.staff_command == "passwd":
            if await store.staff_password_hash(args.name) is None:
                raise UsageError(f"no active staff named {args.name!r}")
            password_hash = hash_password(_read_password(args.name))
            if not await store.set_staff_password(args.name, password_hash, datetime.now(UTC)):
                raise UsageError(f"no active staff named {args.name!r}")
            print(f"password set for {args.name}; their console sessions are ended")
        elif not await store.revoke_staff(args.name):
            raise UsageError(f"no active staff named {args.name!r}")
        return 0
    finally:
        await store.close()


async def _outbox(config: Config, args: argparse.Namespace) -> int:
    store = open_store(config.store_url)
    await store.open()
    try:
        if args.outbox_command == "held":
            for send in await store.held_outbox():
                held_at = send.held_at.isoformat(timespec="seconds")
                print(f"{send.message_id}\t{send.provider}\t{held_at}\t{send.reason or ''}")
            return 0
        resend = args.outbox_command == "resend"
        default = "resent by hand" if resend else "given up by hand"
        reason = args.reason or default
        if not await store.release_held(args.message_id, resend, reason, datetime.now(UTC)):
            raise UsageError(f"message {args.message_id!r} is not held")
        print(f"{args.message_id}: {'queued again' if resend else 'failed'}")
        return 0
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if hasattr(args, "run"):  # commands from receiver.tools
            return int(args.run(args))
        config = load_existing(args.config)
        if args.command == "worker":
            return asyncio.run(_work(config))
        if args.command == "outbox":
            return asyncio.run(_outbox(config, args))
        return asyncio.run(_staff(config, args))
    except (ConfigError, UsageError) as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    except ReceiverError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 1


__all__ = ["main"]
