"""Timestamps at the edge of the range against a real ``receiver serve``.

A provider's timestamp that names no instant from 0001-01-01T00:00:00Z to
9999-12-31T23:59:59.999999Z once converted to UTC used to be an ``OverflowError``: a 500
without ``Retry-After``, so the provider retried the poison request forever, and a batch's
valid reports were never stored. Now such a report is a 400 naming the field, never a 500
or a 503; the last instants inside the range are stored as sent. ``since``/``until`` on the
staff API and the console, and the CLI's time options, refuse them likewise.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from conftest import Server, run_cli, running_server
from console_client import Console
from every_provider import ISO_BUILDERS, OTHER_BUILDERS, PROVIDERS, Builder

from receiver.providers import PROVIDER_TYPES

OUT_OF_RANGE = {
    "year 1, +01:00": "0001-01-01T00:00:00+01:00",
    "year 9999, -01:00": "9999-12-31T23:59:59-01:00",
    "a microsecond before year 1": "0001-01-01T00:00:59.999999+00:01",
    "a microsecond after year 9999": "9999-12-31T23:59:00-00:01",
    "year 0": "0000-01-01T00:00:00Z",
}
IN_RANGE = {
    "the first instant": ("0001-01-01T00:01:00+00:01", datetime(1, 1, 1, tzinfo=UTC)),
    "the last instant": (
        "9999-12-31T23:58:59.999999-00:01",
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "edge-dates", providers=PROVIDERS) as started:
        yield started


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("edge-admin", "admin")) as client:
        yield client


def assert_bad_field(answer: httpx.Response, code: str, field: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["code"], problem["field"]) == (code, field)
    assert problem["detail"].startswith(field + ": ")


def stored_times(api: httpx.Client, provider: str, provider_message_id: str) -> list[datetime]:
    """The ``occurred_at`` of every event of the one message with that id."""
    params = {"provider": provider, "provider_message_id": provider_message_id}
    items = api.get("/v1/messages", params=params).json()["items"]
    assert len(items) == 1, items
    events = api.get(f"/v1/messages/{items[0]['id']}/events").json()["items"]
    return [datetime.fromisoformat(event["occurred_at"]) for event in events]


@pytest.mark.parametrize("stamp", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
@pytest.mark.parametrize("build", ISO_BUILDERS.values(), ids=ISO_BUILDERS.keys())
def test_a_time_outside_the_range_is_400_naming_the_field(
    server: Server, api: httpx.Client, build: Builder, stamp: str
) -> None:
    stamped = build(stamp, server.base_url)
    assert_bad_field(server.post(stamped.request), "PAYLOAD_INVALID", stamped.field)
    params = {"provider": stamped.provider, "provider_message_id": stamped.provider_message_id}
    assert api.get("/v1/messages", params=params).json()["items"] == []


@pytest.mark.parametrize(("stamp", "instant"), IN_RANGE.values(), ids=IN_RANGE.keys())
@pytest.mark.parametrize("build", ISO_BUILDERS.values(), ids=ISO_BUILDERS.keys())
def test_the_first_and_last_instants_are_stored_as_sent(
    server: Server, api: httpx.Client, build: Builder, stamp: str, instant: datetime
) -> None:
    stamped = build(stamp, server.base_url)
    answer = server.post(stamped.request)
    assert answer.status_code == 200, answer.text
    assert instant in stored_times(api, stamped.provider, stamped.provider_message_id)


def test_every_provider_type_is_in_the_chaos_tests() -> None:
    assert {table["type"] for table in PROVIDERS.values()} == set(PROVIDER_TYPES)


@pytest.mark.parametrize(
    ("kind", "stamp", "outcome"),
    [
        # Vonage's message-timestamp is UTC without offset: every year 1-9999 is storable.
        ("vonage-sms", "0001-01-01 00:00:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("vonage-sms", "9999-12-31 23:59:59", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("vonage-sms", "0000-12-31 23:59:59", "message-timestamp"),
        # SMPP's YYMMDDhhmm names 2000-2099 only.
        ("jasmin", "9912312359", datetime(2099, 12, 31, 23, 59, tzinfo=UTC)),
        ("jasmin", "9913312359", "donedate"),
        # Smstools writes local time in the account's zone (Etc/GMT-1 here: UTC+1).
        ("smstools", "0001-01-01 01:00:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("smstools", "0001-01-01 00:59:59", "[0].message.delivery_status_datetime"),
        ("smstools", "9999-12-31 23:59:59", datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC)),
        # Twilio's RawDlrDoneDate is not read: any text is kept in the raw request only.
        ("twilio", "0001-01-01T00:00:00+01:00", None),
    ],
)
def test_zone_less_and_unread_times(
    server: Server, api: httpx.Client, kind: str, stamp: str, outcome: datetime | str | None
) -> None:
    stamped = OTHER_BUILDERS[kind](stamp, server.base_url)
    answer = server.post(stamped.request)
    if isinstance(outcome, str):
        assert_bad_field(answer, "PAYLOAD_INVALID", outcome)
        return
    assert answer.status_code == 200, answer.text
    stored = stored_times(api, stamped.provider, stamped.provider_message_id)
    assert outcome is None or outcome in stored


def test_a_signed_timestamp_header_past_the_range_is_a_signature_failure(server: Server) -> None:
    stamped = ISO_BUILDERS["standard"]("2026-11-23T09:59:58Z", server.base_url)
    headers = stamped.request.headers | {"webhook-timestamp": "999999999999"}
    answer = httpx.post(server.base_url + "/webhooks/standard", content=b"{}", headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "TIMESTAMP_FUTURE"


BAD_FILTERS = [
    ("since", "0001-01-01T00:00:00+01:00"),
    ("until", "9999-12-31T23:59:59-01:00"),
    ("since", "0000-01-01T00:00:00Z"),
    ("until", "10000-01-01T00:00:00Z"),
    ("until", "88"),  # not Unix time: the document says date-time
    ("since", "2026-11-23T09:59:58"),  # RFC 3339 requires the offset
    ("since", "2026-11-23T09:59:60Z"),  # a leap second, which no store can hold
]


@pytest.mark.parametrize(("name", "value"), BAD_FILTERS)
def test_staff_api_time_filters_outside_the_range_are_400(
    api: httpx.Client, name: str, value: str
) -> None:
    answer = api.get("/v1/messages", params={name: value})
    assert_bad_field(answer, "FILTER_INVALID", name)


def test_staff_api_time_filters_at_the_ends_of_the_range_are_read(
    server: Server, api: httpx.Client
) -> None:
    stamped = ISO_BUILDERS["standard"]("2026-11-23T09:59:58Z", server.base_url)
    assert server.post(stamped.request).status_code == 200
    params = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"}
    answer = api.get("/v1/messages", params=params | {"limit": "200"})
    assert answer.status_code == 200, answer.text
    found = [item["provider_message_id"] for item in answer.json()["items"]]
    assert stamped.provider_message_id in found


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "0001-01-01T00:00:00+01:00"),
        ("until", "9999-12-31T23:59:59-01:00"),
        ("since", "0000-01-01T00:00"),
    ],
)
def test_console_time_filters_outside_the_range_are_a_form_error(
    server: Server, name: str, value: str
) -> None:
    with Console(server) as console:
        console.login(token=server.staff_token(f"edge-{name}-{len(value)}", "viewer"))
        page = console.get("/console/messages", params={name: value})
        assert page.status_code == 400, page.text
        assert 'data-test="search-error"' in page.text
        assert "outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z" in page.text or (
            "is not an ISO 8601 date or time" in page.text
        )
        first = console.get("/console/messages", params={name: "0001-01-01T00:00"})
        assert first.status_code == 200, first.text


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--since", "0001-01-01T00:00:00+01:00"],
        ["export", "--until", "9999-12-31T23:59:59-01:00"],
    ],
)
def test_cli_time_options_outside_the_range_are_one_line_and_exit_2(
    server: Server, args: list[str]
) -> None:
    result = run_cli(*args, "--config", str(server.config_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert f"{args[1]} {args[2]!r} is outside 0001-01-01T00:00:00Z" in result.stderr


@pytest.mark.parametrize(
    "start", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1999-12-31T00:00:00Z"]
)
def test_simulate_start_outside_its_years_is_a_usage_error(server: Server, start: str) -> None:
    result = run_cli(
        "simulate",
        "--url",
        server.base_url,
        "--config",
        str(server.config_path),
        "--provider",
        "standard",
        "--messages",
        "1",
        "--start",
        start,
    )
    assert result.returncode == 2, result.stderr
    assert "--start" in result.stderr
    assert "Traceback" not in result.stderr
