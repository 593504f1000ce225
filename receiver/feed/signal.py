"""Wakes everyone waiting for new changes in this process (the SSE streams)."""

from __future__ import annotations

import asyncio
import contextlib


class ChangeSignal:
    """A broadcast: ``notify()`` wakes every ``wait`` begun before it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """Take this before reading the store, then ``wait`` on it: a change committed
        in between is not missed."""
        return self._event

    @staticmethod
    async def wait(event: asyncio.Event, seconds: float) -> bool:
        """True if notified within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
            return True
        return False
