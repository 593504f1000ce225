"""``FakeServer.wait_until``: what the fakes and ``TestSubscriber`` wait with."""

from __future__ import annotations

import threading
import time

import pytest

from receiver.testing.subscriber import TestSubscriber


def test_wait_until_sees_a_condition_outside_the_server_without_waiting_out_the_timeout():
    flag = threading.Event()  # state the server never notifies about (like a database)
    threading.Timer(0.2, flag.set).start()
    with TestSubscriber() as subscriber:
        started = time.monotonic()
        subscriber.wait_until(flag.is_set, "the flag", timeout=10.0)
        waited = time.monotonic() - started
    assert flag.is_set()
    assert waited < 5.0  # re-checked on its own: not at the 10 s timeout


def test_wait_until_names_what_it_waited_for_when_it_times_out():
    with TestSubscriber() as subscriber, pytest.raises(TimeoutError, match="the impossible"):
        subscriber.wait_until(lambda: False, "the impossible", timeout=0.2)
