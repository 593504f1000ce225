"""Console password checks and their limits (receiver/console/passwords.py), on a real
SQLite store with real scrypt hashes; the flood against a real server is in
tests/chaos/test_login_flood.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receiver.auth import hash_password, hash_token, new_token
from receiver.config import Settings
from receiver.console.passwords import PER_ADDRESS_BURST, PasswordChecks, TooManyAttempts
from receiver.store import open_store
from receiver.store.sql import SqlStore

PASSWORD = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path / 'receiver.db'}")
    await store.open()
    await store.add_staff("alice", "viewer", hash_token(new_token()))
    assert await store.set_staff_password("alice", hash_password(PASSWORD), datetime.now(UTC))
    yield store
    await store.close()


def checks(clock: Clock, **settings: Any) -> PasswordChecks:
    return PasswordChecks(Settings(session_secret="s" * 32, **settings), clock)


async def attempt(
    checker: PasswordChecks, store: SqlStore, address: str, password: str = "wrong"
) -> str:
    """What one attempt came to: "member", "no" (checked, wrong) or "refused"."""
    try:
        member = await checker.check(store, address, "alice", password)
    except TooManyAttempts as refused:
        assert refused.retry_after > 0
        return "refused"
    return "no" if member is None else "member"


async def test_the_right_password_finds_the_member_and_a_wrong_one_does_not(store):
    checker = checks(Clock())
    assert await checker.check(store, "10.0.0.1", "alice", PASSWORD) is not None
    assert await checker.check(store, "10.0.0.1", "alice", PASSWORD + "!") is None
    assert await checker.check(store, "10.0.0.1", "nobody", PASSWORD) is None


async def test_all_addresses_together_get_one_burst(store):
    checker = checks(Clock(), console_password_attempts_burst=5)
    results = [await attempt(checker, store, f"10.0.0.{i}") for i in range(8)]
    assert results == ["no"] * 5 + ["refused"] * 3


async def test_one_address_cannot_use_up_the_limit_of_all(store):
    clock = Clock()
    checker = checks(
        clock,
        console_password_attempts_burst=PER_ADDRESS_BURST + 2,
        console_password_hashes_at_once=2,
    )
    noisy = [await attempt(checker, store, "10.0.0.1") for _ in range(PER_ADDRESS_BURST + 5)]
    assert noisy == ["no"] * PER_ADDRESS_BURST + ["refused"] * 5  # refused by its own limit
    # The address's refused attempts did not count against everyone's burst.
    assert await attempt(checker, store, "10.0.0.2", PASSWORD) == "member"
    assert await attempt(checker, store, "10.0.0.3", PASSWORD) == "member"
    assert await attempt(checker, store, "10.0.0.4", PASSWORD) == "refused"


async def test_no_more_than_the_hashes_and_a_burst_wait_at_once(store):
    clock = Clock()
    checker = checks(clock, console_password_attempts_burst=2, console_password_hashes_at_once=1)
    first = [asyncio.create_task(attempt(checker, store, f"10.0.1.{i}")) for i in range(2)]
    await asyncio.sleep(0)  # both are admitted: one hashes (0.1 s), one waits
    clock.now += 10  # everyone's burst is back, but the queue is not empty
    more = [asyncio.create_task(attempt(checker, store, f"10.0.2.{i}")) for i in range(3)]
    results = await asyncio.gather(*first, *more)
    assert results == ["no", "no", "no", "refused", "refused"]  # 1 hashing + 2 waiting
