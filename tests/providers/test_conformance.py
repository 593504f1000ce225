"""The provider conformance suite: what every registered provider type does alike, tested
once for all of them against one real ``receiver serve`` (README "HTTP API",
"Configuration").

A type is refused without its credentials and accepted with them; a correctly signed
report is committed (and found by the staff API) before its answer; a tampered one is
401 ``SIGNATURE_INVALID`` and one without its credentials 401 ``SIGNATURE_MISSING``,
neither stored; a redelivery is a duplicate. A new type gets these tests by having an
entry in ``tests/every_provider.py`` (``PROVIDERS``, ``CURRENT``); the type's own module
in tests/providers/ keeps only what is specific to it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, assert_problem, running_server, write_config
from every_provider import CURRENT, PROVIDERS, Stamped, current_report

from receiver.config import load
from receiver.errors import ConfigError
from receiver.providers import PROVIDER_TYPES
from receiver.testing import SignedRequest

KINDS = sorted(PROVIDER_TYPES)
CREDENTIALS = ("secrets", "url_token", "public_key")
"""The keys that let a type check its reports (``allowed_ips`` aside)."""
ANSWER_EXTRAS: dict[str, dict[str, Any]] = {"futuresms": {"status": "ok"}}
"""Members a type's answer carries beside the JSON counts (what its sender checks)."""
UNSIGNED_ANSWERS = {"vonage": (503, "RETRY_LATER")}
"""Types that answer an unsigned report otherwise than 401 ``SIGNATURE_MISSING``: Vonage
sends one after an internal error and a signed retry follows a 503 (README "HTTP API")."""
JASMIN_ACK = b"ACK/Jasmin"
"""Jasmin's answer instead of the JSON counts: it resends anything else."""

pytestmark = pytest.mark.parametrize("kind", KINDS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One provider of every type, each named after its type."""
    with running_server(tmp_path_factory, "conformance", providers=PROVIDERS) as started:
        yield started


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("conformance", "admin")) as client:
        yield client


def always_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


def messages(api: httpx.Client, kind: str, provider_message_id: str) -> list[dict[str, Any]]:
    params = {"provider": kind, "provider_message_id": provider_message_id}
    answer = api.get("/v1/messages", params=params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def webhook_events(api: httpx.Client, message_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/v1/messages/{message_id}/events")
    assert answer.status_code == 200, answer.text
    return [event for event in answer.json()["items"] if event["source"] == "webhook"]


def assert_counts(
    answer: httpx.Response, kind: str, *, applied: int, duplicates: int, superseded: int = 0
) -> None:
    """The 200 a committed report gets: the JSON counts, or the answer its type's sender
    expects instead (Jasmin)."""
    assert answer.status_code == 200, answer.text
    if kind == "jasmin":
        assert answer.content == JASMIN_ACK
        return
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "received": 1,
        "applied": applied,
        "duplicates": duplicates,
        "superseded": superseded,
        **ANSWER_EXTRAS.get(kind, {}),
    }


def changed(request: SignedRequest, **changes: Any) -> SignedRequest:
    """A copy of ``request`` with ``changes`` (``path``, ``body``, ``headers``)."""
    fields = {"path": request.path, "body": request.body, "headers": request.headers}
    return SignedRequest(**(fields | changes), method=request.method)


def with_token(request: SignedRequest, token: str | None) -> SignedRequest:
    """``request`` with its ``token`` query parameter replaced (``None``: removed)."""
    path, _, query = request.path.partition("?")
    params = [pair for pair in query.split("&") if pair and not pair.startswith("token=")]
    if token is not None:
        params.append(f"token={token}")
    return changed(request, path="?".join([path, "&".join(params)]).rstrip("?"))


def tampered(kind: str, stamped: Stamped) -> SignedRequest:
    """The report changed after it was signed: another provider message id in what is
    signed; for a type that checks a password (HTTP Basic) or a token instead of a
    signature, the wrong one."""
    request = stamped.request
    if "url_token" in PROVIDERS[kind]:
        return with_token(request, PROVIDERS[kind]["url_token"][::-1])
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        user = base64.b64decode(credentials).decode().partition(":")[0]
        wrong = base64.b64encode(f"{user}:not-the-password".encode()).decode()
        return changed(request, headers=request.headers | {"authorization": f"Basic {wrong}"})
    ours = stamped.provider_message_id.partition(":")[0]  # Sinch: batch:recipient
    if ours.encode() in request.body:
        return changed(request, body=request.body.replace(ours.encode(), ours[::-1].encode()))
    assert ours in request.path, (ours, request)  # a report in the query string (Bird)
    return changed(request, path=request.path.replace(ours, ours[::-1]))


def unsigned(kind: str, request: SignedRequest) -> SignedRequest:
    """``request`` without what proves its sender: no token, no header but the body's."""
    if "url_token" in PROVIDERS[kind]:
        return with_token(request, None)
    kept = {"content-type"}
    headers = {name: value for name, value in request.headers.items() if name.lower() in kept}
    return changed(request, headers=headers)


# --------------------------------------------------------------------------- config


def test_every_registered_type_has_a_case(kind: str) -> None:
    assert PROVIDERS[kind]["type"] == kind
    assert kind in CURRENT


def test_the_config_table_is_accepted(tmp_path: Path, kind: str) -> None:
    config = load(write_config(tmp_path, None, {kind: PROVIDERS[kind]}))
    provider = config.providers[kind]
    assert type(provider) is PROVIDER_TYPES[kind]
    assert provider.name == kind


def test_without_credentials_the_config_is_refused(tmp_path: Path, kind: str) -> None:
    table = {key: value for key, value in PROVIDERS[kind].items() if key not in CREDENTIALS}
    path = write_config(tmp_path, None, {kind: table})
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(path) in str(refused.value)
    assert f"providers.{kind}" in str(refused.value)


def test_an_unknown_key_is_refused(tmp_path: Path, kind: str) -> None:
    path = write_config(tmp_path, None, {kind: PROVIDERS[kind] | {"no_such_key": "x"}})
    with pytest.raises(ConfigError, match="no_such_key"):
        load(path)


# --------------------------------------------------------------------------- reports


def test_a_signed_report_is_committed_before_its_answer(
    server: Server, api: httpx.Client, kind: str
) -> None:
    stamped = current_report(kind, server.base_url)
    assert messages(api, kind, stamped.provider_message_id) == []

    assert_counts(server.post(stamped.request), kind, applied=1, duplicates=0)

    [message] = messages(api, kind, stamped.provider_message_id)
    assert (message["provider"], message["status"]) == (kind, "delivered")
    [event] = webhook_events(api, message["id"])
    assert (event["status"], event["outcome"]) == ("delivered", "applied")


def test_a_redelivery_is_a_duplicate(server: Server, api: httpx.Client, kind: str) -> None:
    stamped = current_report(kind, server.base_url)
    assert_counts(server.post(stamped.request), kind, applied=1, duplicates=0)

    assert_counts(server.post(stamped.request), kind, applied=0, duplicates=1)

    [message] = messages(api, kind, stamped.provider_message_id)
    assert len(webhook_events(api, message["id"])) == 1


def test_a_tampered_report_is_refused_and_not_stored(
    server: Server, api: httpx.Client, kind: str
) -> None:
    stamped = current_report(kind, server.base_url)
    answer = server.post(tampered(kind, stamped))
    assert_problem(answer, 401, "SIGNATURE_INVALID")
    assert answer.content != JASMIN_ACK  # so Jasmin resends
    for credential in CREDENTIALS:  # it never says what was expected
        for value in always_list(PROVIDERS[kind].get(credential)):
            assert value not in answer.text
    assert messages(api, kind, stamped.provider_message_id) == []


def test_a_report_without_its_credentials_is_refused_and_not_stored(
    server: Server, api: httpx.Client, kind: str
) -> None:
    stamped = current_report(kind, server.base_url)
    status, code = UNSIGNED_ANSWERS.get(kind, (401, "SIGNATURE_MISSING"))
    assert_problem(server.post(unsigned(kind, stamped.request)), status, code)
    assert messages(api, kind, stamped.provider_message_id) == []
