"""The store's cost of a send, with and without the shared admission state (issue 11).

Run from the repository root in the venv (``pip install -e '.[test]'``)::

    python bench/sends.py            # 2,000 sends per row
    python bench/sends.py --quick    # 200 sends per row (tests/bench runs it)

Theory of operation
-------------------
``POST /v1/messages`` commits its message through ``Store.create_send``. Since schema
version 12 it first counts the client's rate and claims its Idempotency-Key in the
database (``Store.admit``, ``receiver.store.limits``), so that every process on one
database shares them; ``create_send`` then settles the claim. Both run as units of the
SQLite writer's group commit (``synchronous = FULL``), on a real file.

Each row sends N messages with a fresh key each, the same way, in one run on one store:
``create_send`` alone (the store's work before version 12) and ``admit`` then
``create_send`` (after), one at a time (every unit its own commit: the latency a lone
client sees) and 32 at a time (units share commits, as under load). The ratio after /
before is the figure: the machine's speed cancels out. HTTP, authentication and
validation are not in it, so the ratio overstates the cost a whole request sees.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from receiver.core.ratelimit import Rate, to_ns
from receiver.records import KeyClaim, NewSend
from receiver.store.sqlite import SqliteStore

RATE = Rate(per_second=100_000, burst=100_000)
"""Roomy: every send is allowed, so each row measures the full path."""


def new_send(claim: KeyClaim | None) -> NewSend:
    now = datetime.now(UTC)
    return NewSend(
        client_id="stf_bench",
        provider="acme",
        to=f"+63917{secrets.randbelow(10**7):07d}",
        body="Your order is on its way",
        sender="ACME",
        client_reference=None,
        segments=1,
        idempotency_key=secrets.token_hex(8) if claim is None else claim.key,
        fingerprint="bench",
        key_expires_at=now + timedelta(days=1),
        now=now,
        claim_token=None if claim is None else claim.token,
    )


async def send_once(store: SqliteStore, admitted: bool) -> None:
    """One send: ``create_send``, after ``admit`` when ``admitted``."""
    claim = None
    if admitted:
        now = datetime.now(UTC)
        claim = KeyClaim("stf_bench", secrets.token_hex(8), secrets.token_hex(16), now, now)
        verdict = await store.admit("send:stf_bench", RATE, to_ns(time.time()), claim)
        assert verdict.decision.allowed and verdict.claimed
    await store.create_send(new_send(claim), lambda record: (202, "{}"))


async def rate_of(store: SqliteStore, sends: int, at_once: int, admitted: bool) -> float:
    """Sends per second, ``at_once`` in flight at a time."""
    started = time.perf_counter()
    for _ in range(sends // at_once):
        await asyncio.gather(*(send_once(store, admitted) for _ in range(at_once)))
    return sends / (time.perf_counter() - started)


async def main(sends: int, workdir: Path) -> None:
    store = SqliteStore(workdir / "sends.db")
    await store.open()
    try:
        await rate_of(store, 64, 32, True)  # warm up
        print("| in flight | before (sends/s) | after (sends/s) | after / before |")
        print("|---|---|---|---|")
        for at_once in (1, 32):
            before = await rate_of(store, sends, at_once, False)
            after = await rate_of(store, sends, at_once, True)
            print(f"| {at_once} | {before:,.0f} | {after:,.0f} | {after / before:.2f} |")
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 sends per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(200 if args.quick else 2_000, Path(directory)))
