"""The status model and the one merge rule (README "Status model").

Theory of operation
-------------------
A message's stored status is a pure function of the *set* of reports received for
it: the greatest report wins under a strict total order, so applying reports in
any order, any number of times, converges on the same record.

The order, from most to least significant:

1. higher rank wins (``queued`` 10 < ``sent`` 20 < ``buffered`` 30 < ``unknown`` 35
   < the failures 40 < ``delivered`` 50), so nothing moves a message backwards and
   only ``delivered`` can correct a failure;
2. between two reports of the same rank, the one that occurred first wins (for
   failures: the network's first final word);
3. then ``undelivered`` > ``expired`` > ``rejected`` > ``failed``;
4. then the smaller event id (event ids are unique per provider, so this is total).

A report whose provider word maps to no status (``status is None``) is kept in the
timeline but never changes the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from receiver.core.reports import Report


class Status(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    BUFFERED = "buffered"
    UNKNOWN = "unknown"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    DELIVERED = "delivered"


RANK: dict[Status, int] = {
    Status.QUEUED: 10,
    Status.SENT: 20,
    Status.BUFFERED: 30,
    Status.UNKNOWN: 35,
    Status.UNDELIVERED: 40,
    Status.EXPIRED: 40,
    Status.REJECTED: 40,
    Status.FAILED: 40,
    Status.DELIVERED: 50,
}

FINAL: frozenset[Status] = frozenset(s for s, rank in RANK.items() if rank >= 40)

# Tie-break between failures of the same occurrence time: greater wins.
FAILURE_ORDER: dict[Status, int] = {
    Status.UNDELIVERED: 4,
    Status.EXPIRED: 3,
    Status.REJECTED: 2,
    Status.FAILED: 1,
}


SMPP_RECEIPT_STATES: dict[str, Status] = {
    "DELIVRD": Status.DELIVERED,
    "ACCEPTD": Status.SENT,
    "ENROUTE": Status.BUFFERED,
    "UNDELIV": Status.UNDELIVERED,
    "EXPIRED": Status.EXPIRED,
    "REJECTD": Status.REJECTED,
    "DELETED": Status.FAILED,
    "UNKNOWN": Status.UNKNOWN,
}
"""The message states of an SMPP 3.4 delivery receipt (appendix B: DELIVRD EXPIRED
DELETED UNDELIV ACCEPTD UNKNOWN REJECTD, and ENROUTE, which gateways pass on), for
the types whose reports use them (Jasmin, FutureSMS)."""


def parse_status(word: str) -> Status | None:
    """Our own status for one of our status names, or None for any other word."""
    try:
        return Status(word)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class MessageState:
    """The part of a message record that the merge rule decides."""

    status: Status | None = None
    status_event_id: str | None = None
    status_changed_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    to: str | None = None
    client_reference: str | None = None
    network: str | None = None
    """The smallest ``"MCC-MNC"`` any report with a status named (like ``to``)."""
    sent_at: datetime | None = None
    """The earliest hand-over to the provider or ``sent`` report: report latency counts
    from here to the ``delivered`` report's ``occurred_at``."""

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What merging one new report did: ``applied`` if it changed the status."""

    applied: bool
    state: MessageState


def _standing(status: Status, occurred_at: datetime) -> tuple[int, float, int]:
    # Earlier occurrence wins, hence the negated timestamp.
    return (RANK[status], -occurred_at.timestamp(), FAILURE_ORDER.get(status, 0))


def outranks(report: Report, state: MessageState) -> bool:
    """True if ``report`` is greater than the report that set ``state``."""
    if report.status is None:
        return False
    if state.status is None or state.status_changed_at is None or state.status_event_id is None:
        return True
    ours = _standing(report.status, report.occurred_at)
    theirs = _standing(state.status, state.status_changed_at)
    if ours != theirs:
        return ours > theirs
    return report.event_id < state.status_event_id


def merge(state: MessageState, report: Report) -> MergeResult:
    """Merge one *new* report (its event id never seen before) into a message state.

    ``to``, ``client_reference`` and ``network`` keep the smallest value any report with
    a status named, and ``sent_at`` the earliest hand-over or ``sent`` report, so they too
    are order-independent; a report without a status changes nothing.
    """
    if report.status is None:
        return MergeResult(applied=False, state=state)
    applied = outranks(report, state)
    # One MessageState made whole: ``dataclasses.replace`` costs 3.7 us a call, and the
    # merge runs once per new report (docs/performance.md).
    return MergeResult(
        applied=applied,
        state=MessageState(
            status=report.status if applied else state.status,
            status_event_id=report.event_id if applied else state.status_event_id,
            status_changed_at=report.occurred_at if applied else state.status_changed_at,
            error_code=report.error_code if applied else state.error_code,
            error_message=report.error_message if applied else state.error_message,
            to=_smallest(state.to, report.to),
            client_reference=_smallest(state.client_reference, report.client_reference),
            network=_smallest(state.network, report.network),
            sent_at=_earliest_sent(state.sent_at, report),
        ),
    )


def _earliest_sent(current: datetime | None, report: Report) -> datetime | None:
    if not (report.hand_over or report.status is Status.SENT):
        return current
    if current is None or report.occurred_at < current:
        return report.occurred_at
    return current


def _smallest(current: str | None, offered: str | None) -> str | None:
    if offered is not None and (current is None or offered < current):
        return offered
    return current
