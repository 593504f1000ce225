"""Console password checks at a bounded cost, however many attempts arrive.

Theory of operation
-------------------
Checking a password is one scrypt hash (``receiver.auth``): 32 MiB and about 0.1 s of
one core. Run on Starlette's shared thread pool (40 threads), a flood of wrong
passwords from many addresses held 40 hashes at once: the server went from 70 MiB to
1.3 GiB and the webhooks' p50 from 5-8 ms to 160-170 ms (docs/performance.md). An
attempt now passes, in this order:

1. the limit of its client address (GCRA): a burst of 20, then one every 3 s, so one
   address cannot use up the limit of all; the table of addresses holds at most
   ``ADDRESSES_KEPT`` (``receiver.core.ratelimit``'s ``max_keys``);
2. the limit of all addresses together (GCRA):
   ``console_password_attempts_per_second`` with bursts of
   ``console_password_attempts_burst``, which bounds the CPU spent on hashing to that
   rate times 0.1 s per second;
3. a place in the queue: at most ``console_password_hashes_at_once`` hashes run, on
   threads of their own at the lowest CPU priority (so the event loop, which answers
   the webhooks, comes first), and at most a burst's worth of attempts wait for them.

An attempt refused by any of these is answered 429 with ``Retry-After`` and costs no
hash. Memory for hashing stays at ``hashes_at_once`` x 32 MiB: the scrypt block is
larger than glibc's largest mmap threshold (32 MiB), so each one is mapped and
unmapped whole and is not kept in a malloc arena afterwards (measured: after a flood
the server's RSS is back within a few MiB of idle). Waiting attempts cost a coroutine
each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from receiver.auth import verify_password
from receiver.config import Settings
from receiver.core.ratelimit import RateLimiter
from receiver.records import StaffMember
from receiver.store.base import Store

PER_ADDRESS_BURST = 20
"""Password attempts a client address may make at once; then one every 3 s."""
PER_ADDRESS_PER_SECOND = 1 / 3
ADDRESSES_KEPT = 10_000
"""Client addresses whose recent attempts are remembered (about 200 bytes each)."""
QUEUE_FULL_RETRY_SECONDS = 1.0


def _yield_the_cpu() -> None:
    """Run this hashing thread at the lowest priority, so that it takes only CPU the
    event loop (and so the webhooks) does not want. Linux keeps a nice value per
    thread (setpriority(2), "Bugs"); elsewhere the id would name a process."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):  # a failed initializer would break the pool
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class TooManyAttempts(Exception):
    """The attempt was refused before any hash; try again after ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class PasswordChecks:
    """The limits and the hashing threads of one app's password logins."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_address = RateLimiter(
            PER_ADDRESS_PER_SECOND, PER_ADDRESS_BURST, clock, max_keys=ADDRESSES_KEPT
        )
        burst = settings.console_password_attempts_burst
        self._everyone = RateLimiter(settings.console_password_attempts_per_second, burst, clock)
        hashes = settings.console_password_hashes_at_once
        self._hashing = ThreadPoolExecutor(
            hashes, thread_name_prefix="receiver-password", initializer=_yield_the_cpu
        )
        self._most_admitted = hashes + burst
        self._admitted = 0  # hashing or waiting to; only touched on the event loop

    async def check(
        self, store: Store, address: str, name: str, password: str
    ) -> StaffMember | None:
        """The active member ``name`` if ``password`` is theirs, else None; raises
        ``TooManyAttempts`` (before any hash) when a limit refuses the attempt.

        A missing member or password still pays for one hash (``verify_password``
        checks a dummy), so the answer's timing does not tell which names exist."""
        for limiter, key in ((self._per_address, address), (self._everyone, "*")):
            decision = limiter.acquire(key)
            if not decision.allowed:
                raise TooManyAttempts(decision.retry_after)
        if self._admitted >= self._most_admitted:
            raise TooManyAttempts(QUEUE_FULL_RETRY_SECONDS)
        self._admitted += 1
        try:
            found = await store.staff_password_hash(name)
            member, stored = found if found is not None else (None, None)
            loop = asyncio.get_running_loop()
            matches = await loop.run_in_executor(self._hashing, verify_password, password, stored)
        finally:
            self._admitted -= 1
        return member if matches else None
