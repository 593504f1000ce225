"""The outbox's state machine (receiver/outbound/states.py) as data: no dead end, and
the schema allows exactly its states."""

from __future__ import annotations

import re
from pathlib import Path

from receiver.outbound.states import STEPS, OutboxState

SCHEMA = Path(__file__).parents[2] / "schema.sql"


def reachable(start: OutboxState) -> set[OutboxState]:
    seen, frontier = {start}, [start]
    while frontier:
        state = frontier.pop()
        for step in STEPS.values():
            if state in step.sources and step.target not in seen:
                seen.add(step.target)
                frontier.append(step.target)
    return seen


def test_every_state_is_reached_from_a_new_row_and_can_still_finish() -> None:
    assert reachable(OutboxState.PENDING) == set(OutboxState)
    for state in OutboxState:
        assert OutboxState.DONE in reachable(state), state


def test_done_is_final_and_drops_the_body() -> None:
    assert not [name for name, step in STEPS.items() if OutboxState.DONE in step.sources]
    for step in STEPS.values():
        assert ("body = NULL" in step.sets) == (step.target is OutboxState.DONE)


def test_a_step_moves_only_rows_in_its_sources() -> None:
    assert STEPS["sent"].allowed == "state IN ('sending')"
    assert STEPS["claim"].allowed == "state IN ('pending', 'sending')"


def test_the_schema_allows_exactly_the_machine_s_states() -> None:
    checks = re.findall(r"state\s+TEXT NOT NULL CHECK \(state IN \(([^)]*)\)\)", SCHEMA.read_text())
    outbox_checks = [c for c in checks if "'held'" in c]  # the outbox's (deliveries have none)
    assert outbox_checks
    for check in outbox_checks:
        assert {s.strip(" '") for s in check.split(",")} == {str(s) for s in OutboxState}
