"""The outbox row's states and the steps between them, as data (as
``receiver.core.status`` keeps the report statuses' ranks): the store's outbox rules
(receiver/store/outbox.py) write each step from here, and a test checks the machine has
no dead end.

- ``pending``: waiting for its next attempt (``next_attempt_at``);
- ``sending``: leased to a worker for an attempt (a lease that ran out means the worker
  died mid-attempt: the row is claimed again, in doubt);
- ``held``: an attempt may have reached the provider and nothing can settle it, so a
  person decides (``receiver outbox resend|give-up``);
- ``done``: sent, refused, given up or settled; its body is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    HELD = "held"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Step:
    """A move of one outbox row from any of ``sources`` to ``target``."""

    sources: frozenset[OutboxState]
    target: OutboxState

    @property
    def sets(self) -> str:
        """The SQL assignments of the move (a finished row keeps no body)."""
        body = ", body = NULL, template = NULL" if self.target is OutboxState.DONE else ""
        return f"state = '{self.target}'{body}"

    @property
    def allowed(self) -> str:
        """SQL true for a row this step may move."""
        return "state IN (" + ", ".join(f"'{state}'" for state in sorted(self.sources)) + ")"


def _step(sources: set[OutboxState], target: OutboxState) -> Step:
    return Step(frozenset(sources), target)


PENDING, SENDING, HELD, DONE = OutboxState

CLAIM = _step({PENDING, SENDING}, SENDING)
"""A worker leases a due row, or one whose lease ran out."""
RETRY = _step({SENDING}, PENDING)
"""The attempt failed in a way another attempt may fix."""
SENT = _step({SENDING}, DONE)
"""The provider took the message."""
FAILED = _step({SENDING}, DONE)
"""The provider refused it, or the attempts ran out."""
HOLD = _step({SENDING}, HELD)
"""An attempt may have arrived and neither a lookup nor a safe resend can tell."""
RESEND = _step({HELD}, PENDING)
"""A person checked that no attempt arrived: a fresh start."""
GIVE_UP = _step({HELD}, DONE)
"""A person gives the held message up."""
ERASED = _step({PENDING, SENDING}, DONE)
"""The recipient's number was erased before the message was sent."""
SETTLED = _step({PENDING, HELD}, DONE)
"""A provider's report names the message (pending only when in doubt): it has it."""

STEPS = {
    "claim": CLAIM,
    "retry": RETRY,
    "sent": SENT,
    "failed": FAILED,
    "hold": HOLD,
    "resend": RESEND,
    "give_up": GIVE_UP,
    "erased": ERASED,
    "settled": SETTLED,
}
