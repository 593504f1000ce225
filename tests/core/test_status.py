"""The status model and the merge rule (README "Status model")."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.core.reports import Report
from receiver.core.status import (
    FAILURE_ORDER,
    FINAL,
    RANK,
    MergeResult,
    MessageState,
    Status,
    merge,
    parse_status,
)

T0 = datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)
T1 = T0 + timedelta(seconds=2)
MANILA = timezone(timedelta(hours=8))

PROVIDER_STATUS = {
    Status.QUEUED: "accepted",
    Status.SENT: "sent",
    Status.BUFFERED: "buffered",
    Status.UNKNOWN: "unknown",
    Status.UNDELIVERED: "undelivered",
    Status.EXPIRED: "expired",
    Status.REJECTED: "rejected",
    Status.FAILED: "failed",
    Status.DELIVERED: "delivered",
}


def rep(
    event_id: str,
    status: Status | None,
    occurred_at: datetime = T0,
    *,
    to: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Report:
    return Report(
        event_id=event_id,
        provider_message_id="SM8f1c2b3a4d5e6f708192a3b4c5d6e7f8",
        status=status,
        provider_status=PROVIDER_STATUS[status] if status is not None else "DELIVRD_ODD",
        occurred_at=occurred_at,
        to=to,
        error_code=error_code,
        error_message=error_message,
    )


def fold(reports: list[Report]) -> MessageState:
    state = MessageState()
    for report in reports:
        state = merge(state, report).state
    return state


# --- status names, ranks, FINAL ------------------------------------------------------


def test_rank_matches_contract_table() -> None:
    assert RANK == {
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


def test_final_is_exactly_the_failures_and_delivered() -> None:
    assert (
        frozenset(
            {
                Status.UNDELIVERED,
                Status.EXPIRED,
                Status.REJECTED,
                Status.FAILED,
                Status.DELIVERED,
            }
        )
        == FINAL
    )
    assert frozenset(s for s in Status if RANK[s] in (40, 50)) == FINAL


@pytest.mark.parametrize("status", list(Status))
def test_message_state_final_follows_final_set(status: Status) -> None:
    assert MessageState(status=status).final is (status in FINAL)


def test_message_state_without_status_is_not_final() -> None:
    assert MessageState().final is False


def test_failure_order_covers_exactly_the_failures() -> None:
    assert set(FAILURE_ORDER) == {s for s in Status if RANK[s] == 40}
    ranked = sorted(FAILURE_ORDER, key=FAILURE_ORDER.__getitem__, reverse=True)
    assert ranked == [Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED]


@pytest.mark.parametrize("status", list(Status))
def test_parse_status_knows_each_of_our_names(status: Status) -> None:
    assert parse_status(status.value) is status


@pytest.mark.parametrize(
    "word",
    ["DELIVERED", "Delivered", "DELIVRD", "delivrd", "read", "canceled", "", " delivered", "sent "],
)
def test_parse_status_maps_any_other_word_to_none(word: str) -> None:
    assert parse_status(word) is None


# --- the merge rule, pairwise ----------------------------------------------------------

U, Q, S, B, K = Status.UNDELIVERED, Status.QUEUED, Status.SENT, Status.BUFFERED, Status.UNKNOWN
E, R, F, D = Status.EXPIRED, Status.REJECTED, Status.FAILED, Status.DELIVERED

# (current report, new report, does the new one win?)
MERGE_TABLE = [
    # rank order: queued < sent < buffered < unknown < failures < delivered
    pytest.param(rep("evt_a", Q), rep("evt_b", S, T1), True, id="queued->sent"),
    pytest.param(rep("evt_a", S), rep("evt_b", B, T1), True, id="sent->buffered"),
    pytest.param(rep("evt_a", B), rep("evt_b", K, T1), True, id="buffered->unknown"),
    pytest.param(rep("evt_a", K), rep("evt_b", F, T1), True, id="unknown->failed"),
    pytest.param(rep("evt_a", Q), rep("evt_b", U, T1), True, id="queued->undelivered"),
    pytest.param(rep("evt_a", S), rep("evt_b", D, T1), True, id="sent->delivered"),
    # a higher rank wins even if it occurred earlier
    pytest.param(rep("evt_a", S, T1), rep("evt_b", D, T0), True, id="higher-rank-earlier-wins"),
    # delivered corrects a failure, whatever the failure
    pytest.param(rep("evt_a", U), rep("evt_b", D, T1), True, id="undelivered->delivered"),
    pytest.param(rep("evt_a", E), rep("evt_b", D, T1), True, id="expired->delivered"),
    pytest.param(rep("evt_a", R), rep("evt_b", D, T1), True, id="rejected->delivered"),
    pytest.param(rep("evt_a", F), rep("evt_b", D, T1), True, id="failed->delivered"),
    # nothing moves back, however late the report
    pytest.param(rep("evt_a", S), rep("evt_b", Q, T1), False, id="sent-!>queued"),
    pytest.param(rep("evt_a", K), rep("evt_b", B, T1), False, id="unknown-!>buffered"),
    pytest.param(rep("evt_a", F), rep("evt_b", K, T1), False, id="failed-!>unknown"),
    pytest.param(rep("evt_a", U), rep("evt_b", S, T1), False, id="undelivered-!>sent"),
    pytest.param(rep("evt_a", D), rep("evt_b", F, T1), False, id="delivered-!>failed"),
    pytest.param(rep("evt_a", D), rep("evt_b", U, T0), False, id="delivered-!>undelivered"),
    pytest.param(rep("evt_a", D), rep("evt_b", Q, T1), False, id="delivered-!>queued"),
    # same rank: the earlier occurrence wins
    pytest.param(rep("evt_a", S, T1), rep("evt_b", S, T0), True, id="sent-earlier-wins"),
    pytest.param(rep("evt_a", S, T0), rep("evt_b", S, T1), False, id="sent-later-loses"),
    pytest.param(rep("evt_a", D, T1), rep("evt_b", D, T0), True, id="delivered-earlier-wins"),
    pytest.param(rep("evt_a", D, T0), rep("evt_b", D, T1), False, id="delivered-later-loses"),
    # ... before the failure tie-break: the network's first final word
    pytest.param(rep("evt_a", U, T1), rep("evt_b", F, T0), True, id="failed-earlier-beats-undeliv"),
    pytest.param(rep("evt_a", F, T0), rep("evt_b", U, T1), False, id="undeliv-later-loses"),
    # ... down to the microsecond
    pytest.param(
        rep("evt_a", S, T0 + timedelta(microseconds=1)),
        rep("evt_b", S, T0),
        True,
        id="one-microsecond-earlier-wins",
    ),
    # same rank, same instant: undelivered > expired > rejected > failed
    pytest.param(rep("evt_a", F), rep("evt_b", R), True, id="failed->rejected"),
    pytest.param(rep("evt_a", R), rep("evt_b", E), True, id="rejected->expired"),
    pytest.param(rep("evt_a", E), rep("evt_b", U), True, id="expired->undelivered"),
    pytest.param(rep("evt_a", F), rep("evt_b", U), True, id="failed->undelivered"),
    pytest.param(rep("evt_a", U), rep("evt_b", E), False, id="undelivered-!>expired"),
    pytest.param(rep("evt_a", E), rep("evt_b", R), False, id="expired-!>rejected"),
    pytest.param(rep("evt_a", R), rep("evt_b", F), False, id="rejected-!>failed"),
    # the failure tie-break comes before the event id
    pytest.param(rep("evt_a", F), rep("evt_z", U), True, id="undeliv-beats-smaller-event-id"),
    pytest.param(rep("evt_z", U), rep("evt_a", F), False, id="failed-loses-despite-smaller-id"),
    # then the smaller event id
    pytest.param(rep("evt_b", S), rep("evt_a", S), True, id="smaller-event-id-wins"),
    pytest.param(rep("evt_a", S), rep("evt_b", S), False, id="larger-event-id-loses"),
    pytest.param(rep("evt_b", D), rep("evt_a", D), True, id="delivered-smaller-id-wins"),
    # the same instant in another zone is a tie on time, decided by the event id
    pytest.param(
        rep("evt_b", S, T0),
        rep("evt_a", S, T0.astimezone(MANILA)),
        True,
        id="same-instant-other-zone-tie",
    ),
    pytest.param(
        rep("evt_a", S, T0.astimezone(MANILA)),
        rep("evt_b", S, T0),
        False,
        id="same-instant-other-zone-tie-reverse",
    ),
    # a report whose word maps to no status never changes the message
    pytest.param(rep("evt_a", Q), rep("evt_b", None, T1), False, id="queued-!>none"),
    pytest.param(rep("evt_b", S), rep("evt_a", None, T0), False, id="none-smaller-id-earlier"),
    pytest.param(rep("evt_a", D), rep("evt_b", None, T1), False, id="delivered-!>none"),
    pytest.param(rep("evt_a", F), rep("evt_b", None, T0), False, id="failed-!>none"),
]


@pytest.mark.parametrize(("current", "new", "new_wins"), MERGE_TABLE)
def test_merge_table(current: Report, new: Report, new_wins: bool) -> None:
    first = merge(MessageState(), current)
    assert first.applied is True
    assert first.state.status is current.status

    decision = merge(first.state, new)

    assert isinstance(decision, MergeResult)
    assert decision.applied is new_wins
    winner = new if new_wins else current
    assert decision.state.status is winner.status
    assert decision.state.status_event_id == winner.event_id
    assert decision.state.status_changed_at == winner.occurred_at
    if not new_wins:  # a losing `sent` report may still be the earliest hand-over
        assert replace(decision.state, sent_at=first.state.sent_at) == first.state


@pytest.mark.parametrize(("current", "new", "new_wins"), MERGE_TABLE)
def test_merge_table_either_order_same_state(current: Report, new: Report, new_wins: bool) -> None:
    forward = fold([current, new])
    backward = fold([new, current])
    assert forward == backward
    expected = new if new_wins else current
    assert forward.status_event_id == expected.event_id


def test_first_report_sets_every_decided_field() -> None:
    report = rep(
        "evt_01JD8Q",
        U,
        T0,
        to="+639171234567",
        error_code="30003",
        error_message="Unreachable destination handset",
    )
    decision = merge(MessageState(), report)
    assert decision.applied is True
    assert decision.state == MessageState(
        status=U,
        status_event_id="evt_01JD8Q",
        status_changed_at=T0,
        error_code="30003",
        error_message="Unreachable destination handset",
        to="+639171234567",
    )
    assert decision.state.final is True


def test_status_none_into_empty_state_is_not_applied() -> None:
    decision = merge(MessageState(), rep("evt_01", None, T0))
    assert decision.applied is False
    assert decision.state == MessageState()
    assert decision.state.status is None
    assert decision.state.status_event_id is None


def test_status_none_report_keeps_status_and_error_fields() -> None:
    state = fold([rep("evt_01", F, T0, error_code="30005", error_message="Unknown handset")])
    decision = merge(state, rep("evt_02", None, T1, error_code="99", error_message="odd word"))
    assert decision.applied is False
    assert decision.state == state


def test_delivered_correction_clears_the_failure_error() -> None:
    failed = rep("evt_01", U, T0, error_code="30003", error_message="Unreachable handset")
    delivered = rep("evt_02", D, T1)
    state = fold([failed, delivered])
    assert state.status is D
    assert state.error_code is None
    assert state.error_message is None


def test_superseded_report_does_not_leak_its_error() -> None:
    state = fold(
        [
            rep("evt_01", D, T0),
            rep("evt_02", F, T1, error_code="30008", error_message="Unknown error"),
        ]
    )
    assert state.status is D
    assert state.status_event_id == "evt_01"
    assert state.error_code is None
    assert state.error_message is None


def test_a_report_that_does_not_outrank_keeps_every_field_of_the_state() -> None:
    """Every field of MessageState, set, survives a losing report that names none of
    them: a field added to the state but not to the merge would come back None."""
    values = {
        "status": D,
        "status_event_id": "evt_01",
        "status_changed_at": T0,
        "error_code": "0",
        "error_message": "ok",
        "to": "+639171234567",
        "client_reference": "order-1",
        "network": "515-02",
        "sent_at": T0 - timedelta(seconds=5),
    }
    assert set(values) == {field.name for field in fields(MessageState)}
    state = MessageState(**values)
    result = merge(state, rep("evt_02", Status.SENT, T1))
    assert result.applied is False
    assert result.state == state


def test_same_report_merged_again_changes_nothing() -> None:
    report = rep("evt_01", D, T0, to="+639171234567")
    state = merge(MessageState(), report).state
    again = merge(state, report)
    assert again.applied is False
    assert again.state == state


@pytest.mark.parametrize(
    ("tos", "expected"),
    [
        pytest.param([None], None, id="none-named"),
        pytest.param(["+639171234567"], "+639171234567", id="one"),
        pytest.param(["+639171234567", None], "+639171234567", id="later-none-keeps"),
        pytest.param([None, "+639171234567"], "+639171234567", id="later-fills-in"),
        pytest.param(["+639171234567", "+14155550100"], "+14155550100", id="smaller-later"),
        pytest.param(["+14155550100", "+639171234567"], "+14155550100", id="smaller-first"),
        pytest.param(["+447700900123", None, "+14155550100"], "+14155550100", id="three"),
    ],
)
def test_to_keeps_the_smallest_number(tos: list[str | None], expected: str | None) -> None:
    reports = [rep(f"evt_{i:02d}", S, T0 + timedelta(seconds=i), to=to) for i, to in enumerate(tos)]
    assert fold(reports).to == expected
    assert fold(list(reversed(reports))).to == expected


def test_to_taken_from_losing_reports_but_never_from_status_none_reports() -> None:
    state = fold([rep("evt_01", D, T0, to="+639171234567")])
    losing = merge(state, rep("evt_02", S, T1, to="+447700900123"))
    assert losing.applied is False
    assert losing.state.to == "+447700900123"
    assert losing.state.status_event_id == "evt_01"
    unmapped = merge(losing.state, rep("evt_03", None, T1, to="+14155550100"))
    assert unmapped.applied is False
    assert unmapped.state == losing.state  # an unmapped word never changes the message


def test_status_none_report_into_empty_state_changes_nothing() -> None:
    decision = merge(MessageState(), rep("evt_01", None, T0, to="+639171234567"))
    assert decision.applied is False
    assert decision.state == MessageState()


# --- order independence: the property ----------------------------------------------------

EVENT_IDS = ["evt_01", "evt_02", "evt_03", "evt_04", "evt_05", "evt_06"]
INSTANTS = [
    T0,
    T0.astimezone(MANILA),  # the same instant, another zone: ties on time
    T0 + timedelta(microseconds=1),
    T1,
]
NUMBERS = [None, "+639171234567", "+639189876543", "+14155550100"]
ERRORS = [(None, None), ("30003", "Unreachable destination handset"), ("EC_21", "Absent")]


@st.composite
def report_for(draw: st.DrawFn, event_id: str) -> Report:
    status = draw(st.sampled_from([*Status, None]))
    error_code, error_message = draw(st.sampled_from(ERRORS))
    return rep(
        event_id,
        status,
        draw(st.sampled_from(INSTANTS)),
        to=draw(st.sampled_from(NUMBERS)),
        error_code=error_code,
        error_message=error_message,
    )


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Report], list[Report]]:
    """Distinct reports (one per event id), and an arrival order with redeliveries."""
    ids = draw(st.lists(st.sampled_from(EVENT_IDS), min_size=1, max_size=6, unique=True))
    by_id = {event_id: draw(report_for(event_id)) for event_id in ids}
    arrivals = draw(st.lists(st.sampled_from(ids), min_size=len(ids), max_size=12))
    arrivals = [*arrivals, *ids]  # every report arrives at least once
    return list(by_id.values()), [by_id[event_id] for event_id in arrivals]


def fold_once_each(arrivals: list[Report]) -> MessageState:
    """Fold ``merge`` as the store does: an event id already processed is skipped."""
    seen: set[str] = set()
    state = MessageState()
    for report in arrivals:
        if report.event_id in seen:
            continue
        seen.add(report.event_id)
        state = merge(state, report).state
    return state


def oracle(distinct: list[Report]) -> MessageState:
    """The contract's rule written out independently: the greatest report wins."""
    micros = timedelta(microseconds=1)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    preference = ["failed", "rejected", "expired", "undelivered"]
    rank = {"queued": 10, "sent": 20, "buffered": 30, "unknown": 35, "delivered": 50}
    rank.update(dict.fromkeys(preference, 40))
    mapped = [r for r in distinct if r.status is not None]
    numbers = [r.to for r in distinct if r.to is not None and r.status is not None]
    to = min(numbers) if numbers else None
    sent = [r.occurred_at for r in distinct if r.status is Status.SENT or r.hand_over]
    sent_at = min(sent) if sent else None
    if not mapped:
        return MessageState(to=to)

    def key(r: Report) -> tuple[int, int, int]:
        word = r.status.value if r.status is not None else ""
        failure = preference.index(word) if word in preference else -1
        return (rank[word], -((r.occurred_at - epoch) // micros), failure)

    best = max(key(r) for r in mapped)
    tied = [r for r in mapped if key(r) == best]
    winner = min(tied, key=lambda r: r.event_id)
    return MessageState(
        status=winner.status,
        status_event_id=winner.event_id,
        status_changed_at=winner.occurred_at,
        error_code=winner.error_code,
        error_message=winner.error_message,
        to=to,
        sent_at=sent_at,
    )


@given(
    data=deliveries().flatmap(
        lambda d: st.tuples(st.just(d[0]), st.just(d[1]), st.permutations(d[1]))
    )
)
def test_merge_is_order_independent(
    data: tuple[list[Report], list[Report], list[Report]],
) -> None:
    distinct, arrivals, shuffled = data
    expected = fold_once_each(arrivals)
    assert fold_once_each(shuffled) == expected
    assert expected == oracle(distinct)


@given(data=deliveries().flatmap(lambda d: st.tuples(st.just(d[1]), st.permutations(d[1]))))
def test_merge_is_idempotent_even_without_the_processed_set(
    data: tuple[list[Report], list[Report]],
) -> None:
    arrivals, shuffled = data
    assert fold(shuffled) == fold(arrivals) == fold_once_each(arrivals)


@given(data=deliveries())
def test_applied_reports_only_ever_move_forward(
    data: tuple[list[Report], list[Report]],
) -> None:
    _, arrivals = data
    seen: set[str] = set()
    state = MessageState()
    for report in arrivals:
        if report.event_id in seen:
            continue
        seen.add(report.event_id)
        decision = merge(state, report)
        if decision.applied:
            assert report.status is not None
            assert decision.state.status_event_id == report.event_id
            if state.status is not None:
                assert RANK[report.status] >= RANK[state.status]
        else:
            assert decision.state.status == state.status
            assert decision.state.status_event_id == state.status_event_id
        state = decision.state


def test_client_reference_keeps_the_smallest_from_reports_with_a_status() -> None:
    sent, delivered = Status.SENT, Status.DELIVERED
    first = merge(MessageState(), Report("evt_01", "p", sent, "sent", T0, client_reference="o-9"))
    second = merge(
        first.state, Report("evt_02", "p", delivered, "delivered", T1, client_reference="o-1")
    )
    unmapped = merge(second.state, Report("evt_03", "p", None, "odd", T1, client_reference="a"))
    assert first.state.client_reference == "o-9"
    assert second.state.client_reference == "o-1"
    assert unmapped.state == second.state
