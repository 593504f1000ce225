"""The staff JSON API (README "HTTP API") against a real ``receiver serve`` process.

One server serves the whole module; every test uses its own provider message ids and
phone numbers, so tests never see each other's messages unless they look for them.
"""

from __future__ import annotations

import base64
import secrets
import signal
import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from conftest import Server, assert_problem, new_whsec, run_cli, unique, write_config
from itsdangerous import URLSafeSerializer

from receiver.auth import ROLES, role_allows
from receiver.testing import standard_report, standard_request

MESSAGE_FIELDS = {
    "id": str,
    "provider": str,
    "provider_message_id": (str, type(None)),
    "to": (str, type(None)),
    "status": (str, type(None)),
    "final": bool,
    "error_code": (str, type(None)),
    "error_message": (str, type(None)),
    "client_reference": (str, type(None)),
    "created_at": str,
    "updated_at": str,
    "status_changed_at": (str, type(None)),
    "report_count": int,
    "sender": (str, type(None)),
    "segments": (int, type(None)),
    "country": (str, type(None)),
    "network": (str, type(None)),
}
EVENT_FIELDS = {
    "event_id": str,
    "source": str,
    "status": (str, type(None)),
    "provider_status": str,
    "error_code": (str, type(None)),
    "occurred_at": str,
    "received_at": str,
    "outcome": str,
    "deliveries": int,
}


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, backend_settings: dict[str, Any]
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("staff-api")
    providers = {
        "default": {"type": "standard", "secrets": [new_whsec()]},
        "other": {"type": "standard", "secrets": [new_whsec()]},
    }
    server = Server(workdir, write_config(workdir, backend_settings, providers)).start()
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def api(api_server: Server) -> Iterator[httpx.Client]:
    with api_server.api(api_server.staff_token("module-viewer", "viewer")) as client:
        yield client


def new_number() -> tuple[str, str]:
    """A fresh Philippine mobile number: (E.164, as a person would type it)."""
    digits = f"{secrets.randbelow(10**7):07d}"
    return f"+63917{digits}", f"+63 917 {digits[:3]} {digits[3:]}"


def masked(number: str) -> str:
    """A ``+63`` number as a viewer sees it: country code and last four digits."""
    assert number.startswith("+63") and len(number) == 13
    return "+63******" + number[-4:]


def post(
    server: Server,
    message_id: str,
    status: str,
    *,
    provider: str = "default",
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, int]:
    request = standard_request(
        server.secret(provider),
        standard_report(message_id, status, **fields),
        provider=provider,
        event_id=event_id,
    )
    answer = server.post(request)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def lookup(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = api.get("/v1/messages", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"items", "next_cursor"}
    return list(body["items"])


def ids(items: list[dict[str, Any]]) -> list[str | None]:
    return [item["provider_message_id"] for item in items]


def the_message(api: httpx.Client, provider_message_id: str, **params: Any) -> dict[str, Any]:
    items = lookup(api, provider_message_id=provider_message_id, **params)
    assert len(items) == 1, items
    return items[0]


def when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


def newest_first(items: list[dict[str, Any]]) -> bool:
    keys = [(when(item["created_at"]), item["id"]) for item in items]
    return keys == sorted(keys, reverse=True)


# --- authentication and roles ------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/messages", "/v1/messages/msg_unknown", "/v1/messages/msg_unknown/events"]
)
def test_no_authorization_is_401_with_www_authenticate(api_server: Server, path: str) -> None:
    answer = httpx.get(api_server.base_url + path)
    body = assert_problem(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"].lower().startswith("bearer")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"alice:secret").decode(),
        "Token rcv_abc",
        "Bearer",
        "rcv_abc",
    ],
    ids=["basic", "other-scheme", "bearer-without-token", "token-without-scheme"],
)
def test_a_malformed_authorization_header_is_401(api_server: Server, header: str) -> None:
    answer = httpx.get(api_server.base_url + "/v1/messages", headers={"Authorization": header})
    assert_problem(answer, 401, "UNAUTHORIZED")
    assert "www-authenticate" in answer.headers


def test_a_valid_token_sent_with_the_basic_scheme_is_401(api_server: Server) -> None:
    token = api_server.staff_token(unique("basic"), "admin")
    for header in (f"Basic {token}", "Basic " + base64.b64encode(f"{token}:".encode()).decode()):
        answer = httpx.get(api_server.base_url + "/v1/messages", headers={"Authorization": header})
        assert_problem(answer, 401, "UNAUTHORIZED")


def test_an_unknown_token_is_401_and_not_echoed(api_server: Server) -> None:
    token = "rcv_" + secrets.token_urlsafe(32)
    with api_server.api(token) as client:
        answer = client.get("/v1/messages")
    assert_problem(answer, 401, "UNAUTHORIZED")
    assert token not in answer.text
    assert "www-authenticate" in answer.headers


def test_the_bearer_scheme_is_case_insensitive(api_server: Server) -> None:
    token = api_server.staff_token(unique("case"), "viewer")
    answer = httpx.get(
        api_server.base_url + "/v1/messages", headers={"Authorization": f"bearer {token}"}
    )
    assert answer.status_code == 200, answer.text


def test_a_revoked_token_is_refused_at_once_by_the_running_server(api_server: Server) -> None:
    name = unique("leaver")
    with api_server.api(api_server.staff_token(name, "admin")) as client:
        assert client.get("/v1/messages", params={"limit": 1}).status_code == 200
        result = run_cli("staff", "revoke", name, "--config", str(api_server.config_path))
        assert result.returncode == 0, result.stderr
        for path in ("/v1/messages", "/v1/messages/msg_x", "/v1/messages/msg_x/events"):
            assert_problem(client.get(path), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_can_read(api_server: Server, role: str) -> None:
    pmid = unique(f"role-{role}")
    post(api_server, pmid, "sent")
    with api_server.api(api_server.staff_token(unique(role), role)) as client:
        listed = client.get("/v1/messages", params={"provider_message_id": pmid})
        assert listed.status_code == 200, listed.text
        (item,) = listed.json()["items"]
        assert client.get(f"/v1/messages/{item['id']}").status_code == 200
        assert client.get(f"/v1/messages/{item['id']}/events").status_code == 200


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("needed", ROLES)
def test_role_allows_orders_viewer_below_sender_below_admin(role: str, needed: str) -> None:
    order = {"viewer": 0, "sender": 1, "admin": 2}
    assert role_allows(role, needed) is (order[role] >= order[needed])


def test_the_roles_are_exactly_viewer_sender_admin() -> None:
    assert tuple(ROLES) == ("viewer", "sender", "admin")


# --- one message -------------------------------------------------------------------


def test_a_message_has_every_contract_field_with_its_type(
    api_server: Server, api: httpx.Client
) -> None:
    pmid = unique("detail")
    number, _ = new_number()
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    before = datetime.now(UTC)
    post(
        api_server,
        pmid,
        "undelivered",
        to=number,
        occurred_at=occurred,
        error_code="30003",
        error_message="Unreachable destination handset",
    )
    after = datetime.now(UTC)
    listed = the_message(api, pmid)

    answer = api.get(f"/v1/messages/{listed['id']}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    message = answer.json()
    assert message == listed
    for name, kind in MESSAGE_FIELDS.items():
        assert name in message, name
        assert isinstance(message[name], kind), (name, message[name])
    assert message["id"].startswith("msg_")
    assert message["provider"] == "default"
    assert message["provider_message_id"] == pmid
    assert message["to"] == masked(number)  # ``api`` is a viewer
    assert message["status"] == "undelivered"
    assert message["final"] is True
    assert message["error_code"] == "30003"
    assert message["error_message"] == "Unreachable destination handset"
    assert message["client_reference"] is None
    assert message["report_count"] == 1
    assert when(message["status_changed_at"]) == occurred
    created, updated = when(message["created_at"]), when(message["updated_at"])
    assert before - timedelta(seconds=1) <= created <= updated <= after + timedelta(seconds=1)


def test_a_later_report_updates_the_message(api_server: Server, api: httpx.Client) -> None:
    pmid = unique("update")
    post(api_server, pmid, "sent")
    first = the_message(api, pmid)
    assert (first["status"], first["final"], first["report_count"]) == ("sent", False, 1)
    time.sleep(0.01)
    post(api_server, pmid, "delivered")
    second = api.get(f"/v1/messages/{first['id']}").json()
    assert (second["status"], second["final"], second["report_count"]) == ("delivered", True, 2)
    assert second["created_at"] == first["created_at"]
    assert when(second["updated_at"]) > when(first["updated_at"])


def test_an_unknown_status_word_leaves_the_status_null(
    api_server: Server, api: httpx.Client
) -> None:
    pmid = unique("unmapped")
    post(api_server, pmid, "SOMETHING_ODD")
    message = the_message(api, pmid)
    assert message["status"] is None
    assert message["final"] is False
    assert message["status_changed_at"] is None
    assert message["report_count"] == 1


@pytest.mark.parametrize("message_id", ["msg_01ARZ3NDEKTSV4RRFFQ69G5FAV", "nothing-here"])
def test_an_unknown_message_is_404(api: httpx.Client, message_id: str) -> None:
    assert_problem(api.get(f"/v1/messages/{message_id}"), 404, "NOT_FOUND")


# --- lookups -----------------------------------------------------------------------


def test_lookup_by_provider_message_id(api_server: Server, api: httpx.Client) -> None:
    pmid = unique("bypmid")
    post(api_server, pmid, "queued")
    post(api_server, unique("bypmid-noise"), "queued")
    items = lookup(api, provider_message_id=pmid)
    assert ids(items) == [pmid]
    assert lookup(api, provider_message_id=unique("never-seen")) == []


def test_lookup_by_to_accepts_typed_numbers(api_server: Server, api: httpx.Client) -> None:
    number, typed = new_number()
    other, _ = new_number()
    first, second = unique("to-1"), unique("to-2")
    post(api_server, first, "sent", to=number)
    time.sleep(0.01)
    post(api_server, second, "delivered", to=number)
    post(api_server, unique("to-other"), "sent", to=other)

    expected = [second, first]  # newest first
    assert ids(lookup(api, to=number)) == expected
    assert ids(lookup(api, to=typed)) == expected
    assert ids(lookup(api, to=typed.replace(" ", "-"))) == expected
    assert ids(lookup(api, to=f"  {number}  ")) == expected
    # A viewer finds messages by the full number, and sees it masked in the answer.
    assert all(item["to"] == masked(number) for item in lookup(api, to=typed))


@pytest.mark.parametrize(("role", "whole"), [("viewer", False), ("sender", True), ("admin", True)])
def test_only_a_viewer_sees_numbers_masked(api_server: Server, role: str, whole: bool) -> None:
    number, _ = new_number()
    pmid = unique(f"mask-{role}")
    post(api_server, pmid, "delivered", to=number)
    shown = number if whole else masked(number)
    with api_server.api(api_server.staff_token(unique(role), role)) as client:
        for params in ({"provider_message_id": pmid}, {"to": number}):
            (item,) = lookup(client, **params)
            assert item["to"] == shown
        answer = client.get(f"/v1/messages/{item['id']}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["to"] == shown
        if not whole:
            assert number[1:] not in answer.text and number[-7:] not in answer.text


@pytest.mark.parametrize(("role", "whole"), [("viewer", False), ("sender", True)])
def test_a_number_in_the_providers_own_text_is_masked_for_a_viewer(
    api_server: Server, role: str, whole: bool
) -> None:
    number, _ = new_number()
    bare = number[1:]  # providers write it without +: "Destination 63917... is barred"
    pmid = unique(f"text-{role}")
    post(
        api_server,
        pmid,
        "undelivered",
        error_code="13",
        error_message=f"Destination {bare} is barred",
    )
    with api_server.api(api_server.staff_token(unique(role), role)) as client:
        (item,) = lookup(client, provider_message_id=pmid)
        (event,) = client.get(f"/v1/messages/{item['id']}/events").json()["items"]
    shown = f"Destination {bare[:2]}{'*' * (len(bare) - 4)}{bare[-2:]} is barred"
    expected = f"Destination {bare} is barred" if whole else shown
    assert item["error_message"] == event["error_message"] == expected


def test_lookup_by_provider(api_server: Server, api: httpx.Client) -> None:
    shared = unique("shared")  # the same provider message id at two providers
    post(api_server, shared, "sent", provider="default")
    post(api_server, shared, "delivered", provider="other")

    both = lookup(api, provider_message_id=shared)
    assert sorted(item["provider"] for item in both) == ["default", "other"]
    assert len({item["id"] for item in both}) == 2

    (mine,) = lookup(api, provider_message_id=shared, provider="other")
    assert (mine["provider"], mine["status"]) == ("other", "delivered")

    everything_other = lookup(api, provider="other", limit=200)
    assert everything_other
    assert all(item["provider"] == "other" for item in everything_other)
    assert mine["id"] in {item["id"] for item in everything_other}
    assert lookup(api, provider="nobody") == []


def test_lookup_by_status(api_server: Server, api: httpx.Client) -> None:
    number, _ = new_number()
    expired, rejected = unique("st-expired"), unique("st-rejected")
    post(api_server, expired, "expired", to=number)
    post(api_server, rejected, "rejected", to=number)

    assert ids(lookup(api, to=number, status="expired")) == [expired]
    assert ids(lookup(api, to=number, status="rejected")) == [rejected]
    assert lookup(api, to=number, status="delivered") == []

    all_expired = lookup(api, status="expired", limit=200)
    assert expired in ids(all_expired)
    assert all(item["status"] == "expired" for item in all_expired)


def test_lookup_by_created_at_range(api_server: Server, api: httpx.Client) -> None:
    number, _ = new_number()
    names = [unique(f"range-{i}") for i in range(4)]
    post(api_server, names[0], "sent", to=number)
    time.sleep(0.02)
    t1 = datetime.now(UTC)
    time.sleep(0.02)
    post(api_server, names[1], "sent", to=number)
    time.sleep(0.01)
    post(api_server, names[2], "sent", to=number)
    time.sleep(0.02)
    t2 = datetime.now(UTC)
    time.sleep(0.02)
    post(api_server, names[3], "sent", to=number)

    since, until = t1.isoformat(), t2.isoformat()
    assert ids(lookup(api, to=number, since=since, until=until)) == [names[2], names[1]]
    assert ids(lookup(api, to=number, since=since)) == [names[3], names[2], names[1]]
    assert ids(lookup(api, to=number, until=until)) == [names[2], names[1], names[0]]
    # "Z" means the same moment; a time without offset is no RFC 3339 date-time (see
    # test_a_bad_filter_is_400_naming_the_field)
    zulu = t1.isoformat().replace("+00:00", "Z")
    assert ids(lookup(api, to=number, since=zulu)) == [names[3], names[2], names[1]]
    # another offset, same instant
    manila = t1.astimezone(timezone(timedelta(hours=8))).isoformat()
    assert ids(lookup(api, to=number, since=manila)) == [names[3], names[2], names[1]]
    # only the window, whatever the number
    window = lookup(api, since=since, until=until, limit=200)
    assert ids(window) == [names[2], names[1]]
    for item in window:
        assert t1 <= when(item["created_at"]) < t2


def test_combined_filters(api_server: Server, api: httpx.Client) -> None:
    number, typed = new_number()
    start = datetime.now(UTC)
    wanted = unique("combo-wanted")
    post(api_server, wanted, "failed", to=number, provider="other")
    post(api_server, unique("combo-wrong-provider"), "failed", to=number, provider="default")
    post(api_server, unique("combo-wrong-status"), "sent", to=number, provider="other")
    post(api_server, unique("combo-wrong-to"), "failed", to=new_number()[0], provider="other")

    items = lookup(
        api, provider="other", status="failed", to=typed, since=start.isoformat(), limit=10
    )
    assert ids(items) == [wanted]
    assert lookup(api, provider="other", status="failed", to=typed, until=start.isoformat()) == []
    assert ids(lookup(api, provider="other", provider_message_id=wanted, to=number)) == [wanted]


def test_client_reference_filter_matches_nothing_for_webhook_only_messages(
    api_server: Server, api: httpx.Client
) -> None:
    pmid = unique("no-reference")
    post(api_server, pmid, "sent")
    assert the_message(api, pmid)["client_reference"] is None
    assert lookup(api, client_reference=unique("order")) == []


def test_the_whole_list_is_newest_first(api_server: Server, api: httpx.Client) -> None:
    post(api_server, unique("order-a"), "sent")
    post(api_server, unique("order-b"), "sent")
    items = lookup(api, limit=200)
    assert len(items) >= 2
    assert newest_first(items)


# --- pagination --------------------------------------------------------------------


def test_pages_of_three_cover_seven_messages_without_gaps(
    api_server: Server, api: httpx.Client
) -> None:
    number, typed = new_number()
    names = [unique(f"page-{i}") for i in range(7)]
    for name in names:
        post(api_server, name, "sent", to=number)

    pages: list[list[str | None]] = []
    cursors: list[str | None] = []
    params: dict[str, Any] = {"to": typed, "limit": 3}
    while True:
        answer = api.get("/v1/messages", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert newest_first(body["items"])
        pages.append(ids(body["items"]))
        cursors.append(body["next_cursor"])
        if body["next_cursor"] is None:
            break
        assert isinstance(body["next_cursor"], str) and body["next_cursor"]
        params = {"to": typed, "limit": 3, "cursor": body["next_cursor"]}
        assert len(pages) < 5

    assert [len(page) for page in pages] == [3, 3, 1]
    assert cursors[0] is not None and cursors[1] is not None and cursors[2] is None
    assert cursors[0] != cursors[1]
    assert [name for page in pages for name in page] == names[::-1]


def test_an_exactly_full_last_page_may_end_the_list(api_server: Server, api: httpx.Client) -> None:
    number, _ = new_number()
    names = [unique(f"full-{i}") for i in range(4)]
    for name in names:
        post(api_server, name, "sent", to=number)
    first = api.get("/v1/messages", params={"to": number, "limit": 2}).json()
    second = api.get(
        "/v1/messages", params={"to": number, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert ids(first["items"]) + ids(second["items"]) == names[::-1]
    if second["next_cursor"] is not None:  # a cursor after the last item: an empty page
        third = api.get(
            "/v1/messages", params={"to": number, "limit": 2, "cursor": second["next_cursor"]}
        ).json()
        assert third == {"items": [], "next_cursor": None}


def test_paging_the_whole_store_matches_one_big_page(api_server: Server, api: httpx.Client) -> None:
    for i in range(3):
        post(api_server, unique(f"walk-{i}"), "queued")
    everything = lookup(api, limit=200)
    assert len(everything) < 200, "the module made more messages than this test expects"

    walked: list[str] = []
    params: dict[str, Any] = {"limit": 4}
    for _ in range(100):
        body = api.get("/v1/messages", params=params).json()
        walked += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params = {"limit": 4, "cursor": body["next_cursor"]}
    assert len(walked) == len(set(walked))
    assert walked == [item["id"] for item in everything]


def test_a_cursor_stays_valid_while_new_messages_arrive(
    api_server: Server, api: httpx.Client
) -> None:
    number, _ = new_number()
    old = [unique(f"stable-{i}") for i in range(3)]
    for name in old:
        post(api_server, name, "sent", to=number)
    first = api.get("/v1/messages", params={"to": number, "limit": 2}).json()
    post(api_server, unique("stable-new"), "sent", to=number)  # newer than every page
    rest = api.get(
        "/v1/messages", params={"to": number, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert ids(first["items"]) + ids(rest["items"]) == old[::-1]


# --- cursors -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cursor(api_server: Server, api: httpx.Client) -> str:
    number, _ = new_number()
    for i in range(2):
        post(api_server, unique(f"cursor-{i}"), "sent", to=number)
    cursor = api.get("/v1/messages", params={"to": number, "limit": 1}).json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def forged_cursors(real: str, session_secret: str) -> dict[str, str]:
    payload = ["2999-01-01T00:00:00.000000Z", "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"]
    other_secret = URLSafeSerializer(secrets.token_urlsafe(40), salt="receiver.cursor")
    other_salt = URLSafeSerializer(session_secret, salt="something.else")
    body, _, signature = real.rpartition(".")
    swapped = URLSafeSerializer("x" * 40, salt="receiver.cursor").dumps(payload).split(".")[0]
    return {
        "other-secret": other_secret.dumps(payload),
        "other-salt": other_salt.dumps(payload),
        "truncated": real[:-4],
        "signature-dropped": body,
        "payload-swapped": f"{swapped}.{signature}",
        "random-text": "definitely-not-a-cursor",
        "empty": "",
        "unsigned-json": base64.urlsafe_b64encode(b'["a","b"]').decode(),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "other-secret",
        "other-salt",
        "truncated",
        "signature-dropped",
        "payload-swapped",
        "random-text",
        "empty",
        "unsigned-json",
    ],
)
def test_a_forged_or_garbled_cursor_is_400(
    api_server: Server, api: httpx.Client, real_cursor: str, kind: str
) -> None:
    session_secret = str(tomllib.loads(api_server.config_path.read_text())["session_secret"])
    cursor = forged_cursors(real_cursor, session_secret)[kind]
    body = assert_problem(api.get("/v1/messages", params={"cursor": cursor}), 400, "CURSOR_INVALID")
    assert body.get("field") == "cursor"


def test_the_real_cursor_itself_is_accepted(api: httpx.Client, real_cursor: str) -> None:
    assert api.get("/v1/messages", params={"cursor": real_cursor}).status_code == 200


# --- filter validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"since": "notadate"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"until": "88"}, "until"),  # not read as Unix time: the schema says date-time
        ({"since": "2026-11-23T09:59:58"}, "since"),  # no offset
        ({"since": "2026-11-23"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # year 0 in UTC
        ({"until": "9999-12-31T23:59:59-01:00"}, "until"),  # year 10000 in UTC
        ({"to": "12"}, "to"),
        ({"to": "+1"}, "to"),
        ({"to": "not a number"}, "to"),
        ({"phone": "+639171234567"}, "phone"),
    ],
    ids=lambda value: (
        "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None
    ),
)
def test_a_bad_filter_is_400_naming_the_field(
    api: httpx.Client, params: dict[str, str], field: str
) -> None:
    body = assert_problem(api.get("/v1/messages", params=params), 400, "FILTER_INVALID")
    assert body["field"] == field
    assert field in body["detail"]


@pytest.mark.parametrize("limit", ["1", "200"])
def test_limits_at_the_bounds_are_accepted(api: httpx.Client, limit: str) -> None:
    answer = api.get("/v1/messages", params={"limit": limit})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["items"]) <= int(limit)


def test_the_default_limit_is_fifty(api_server: Server, api: httpx.Client) -> None:
    while len(lookup(api, limit=200)) <= 50:
        post(api_server, unique("filler"), "queued")
    assert len(lookup(api)) == 50


# --- events ------------------------------------------------------------------------


def test_the_timeline_is_oldest_first_with_outcomes_and_deliveries(
    api_server: Server, api: httpx.Client
) -> None:
    pmid = unique("timeline")
    tag = uuid.uuid4().hex[:8]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    def event(name: str) -> str:
        return f"evt_{tag}_{name}"

    def send(name: str, status: str, offset: int, **fields: Any) -> dict[str, int]:
        return post(
            api_server,
            pmid,
            status,
            event_id=event(name),
            occurred_at=t0 + timedelta(seconds=offset),
            **fields,
        )

    applied = {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    superseded = {"received": 1, "applied": 0, "duplicates": 0, "superseded": 1}
    duplicate = {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}
    assert send("sent", "sent", 0) == applied
    assert send("failed", "failed", 5, error_code="30005") == applied
    assert send("delivered", "delivered", 10) == applied
    assert send("delivered", "delivered", 10) == duplicate
    assert send("delivered", "delivered", 10) == duplicate
    assert send("late-buffered", "buffered", 3) == superseded
    assert send("odd", "CARRIER_SAYS_WHAT", 1) == superseded

    message = the_message(api, pmid)
    assert message["status"] == "delivered"
    answer = api.get(f"/v1/messages/{message['id']}/events")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"items"}
    items = body["items"]
    for item in items:
        for name, kind in EVENT_FIELDS.items():
            assert name in item, name
            assert isinstance(item[name], kind), (name, item[name])
        assert item["source"] == "webhook"

    summary = [
        (e["event_id"], e["status"], e["provider_status"], e["outcome"], e["deliveries"])
        for e in items
    ]
    assert summary == [
        (event("sent"), "sent", "sent", "applied", 1),
        (event("odd"), None, "CARRIER_SAYS_WHAT", "superseded", 1),
        (event("late-buffered"), "buffered", "buffered", "superseded", 1),
        (event("failed"), "failed", "failed", "applied", 1),
        (event("delivered"), "delivered", "delivered", "applied", 3),
    ]
    occurred = [when(e["occurred_at"]) for e in items]
    assert occurred == [t0 + timedelta(seconds=s) for s in (0, 1, 3, 5, 10)]
    assert [e["error_code"] for e in items] == [None, None, None, "30005", None]
    received = {e["event_id"]: when(e["received_at"]) for e in items}
    assert received[event("sent")] < received[event("failed")] < received[event("delivered")]
    assert received[event("delivered")] < received[event("late-buffered")]
    assert message["report_count"] == len(items)


def test_a_batch_gives_one_event_per_item(api_server: Server, api: httpx.Client) -> None:
    pmid = unique("batch")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    request = standard_request(
        api_server.secret(),
        [
            standard_report(pmid, "sent", occurred_at=t0),
            standard_report(pmid, "delivered", occurred_at=t0 + timedelta(seconds=2)),
        ],
        event_id=f"evt_{uuid.uuid4().hex}",
    )
    answer = api_server.post(request)
    assert answer.json() == {"received": 2, "applied": 2, "duplicates": 0, "superseded": 0}
    message = the_message(api, pmid)
    items = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
    webhook_id = request.headers["webhook-id"]
    assert [e["event_id"] for e in items] == [f"{webhook_id}:0", f"{webhook_id}:1"]
    assert [e["outcome"] for e in items] == ["applied", "applied"]


def test_events_of_an_unknown_message_are_404(api: httpx.Client) -> None:
    answer = api.get("/v1/messages/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV/events")
    assert_problem(answer, 404, "NOT_FOUND")
