"""``receiver outbox held|resend|give-up`` on a real store: how a person settles a send
the worker held because it may have reached the provider."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from conftest import queue_send, run_cli, write_config

from receiver.config import load
from receiver.core.status import Status
from receiver.store import open_store


async def held_message(config: Path) -> str:
    store = open_store(load(config).store_url)
    await store.open()
    try:
        now = datetime.now(UTC)
        message_id = await queue_send(
            store, "default", "+639171234567", "Hi", now=now, client_id="stf_x"
        )
        [item] = await store.claim_outbox("w1", now, 30, 1)
        assert await store.outbox_hold(item, "w1", "may have reached default", now)
        return message_id
    finally:
        await store.close()


async def status_of(config: Path, message_id: str) -> Status | None:
    store = open_store(load(config).store_url)
    await store.open(ingest=False)
    try:
        message = await store.get_message(message_id)
        assert message is not None
        return message.status
    finally:
        await store.close()


async def test_held_lists_and_resend_queues_again(tmp_path):
    config = write_config(tmp_path)
    message_id = await held_message(config)

    listed = run_cli("outbox", "held", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{message_id}\tdefault\t") and line.endswith("may have reached default")

    resent = run_cli("outbox", "resend", message_id, "--config", str(config))
    assert (resent.returncode, resent.stdout.strip()) == (0, f"{message_id}: queued again")
    assert run_cli("outbox", "held", "--config", str(config)).stdout == ""

    again = run_cli("outbox", "resend", message_id, "--config", str(config))
    assert again.returncode == 2
    assert again.stderr.strip() == f"receiver: message {message_id!r} is not held"


async def test_give_up_fails_the_message_with_the_reason(tmp_path):
    config = write_config(tmp_path)
    message_id = await held_message(config)

    given_up = run_cli(
        "outbox", "give-up", message_id, "--reason", "sent by phone", "--config", str(config)
    )

    assert (given_up.returncode, given_up.stdout.strip()) == (0, f"{message_id}: failed")
    assert await status_of(config, message_id) == Status.FAILED
