"""Schemathesis over ``/openapi.json`` of a real ``receiver serve``: without a token and
with a viewer's and an admin's, no answer is a 5xx and every answer agrees with the
document (status codes, content types, headers, bodies); what the document calls invalid
is refused, and a method it does not name is a 405 with ``Allow``."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest
import schemathesis
from conftest import Server, new_whsec, running_server
from hypothesis import HealthCheck, settings
from schemathesis.generation.meta import GenerationMode, ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from receiver.http.openapi import build_document


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A provider that can send, so that a valid POST /v1/messages is accepted (202). Its
    # API address is a closed loopback port: the outbox worker's sends fail and wait.
    providers = {
        "default": {
            "type": "standard",
            "secrets": [new_whsec()],
            "api_base_url": "http://127.0.0.1:9",
            "api_key": "test-api-key-" + secrets.token_hex(8),
            "sender": "RECEIVER",
        }
    }
    with running_server(tmp_path_factory, "schemathesis", providers=providers) as server:
        yield server


@pytest.fixture(scope="module")
def tokens(api_server: Server) -> dict[str, str]:
    return {
        role: api_server.staff_token(f"schemathesis-{role}", role) for role in ("viewer", "admin")
    }


# Loaded from the same builder the server answers /openapi.json from (see
# test_the_server_serves_this_document), so that pytest can list the operations.
schema = schemathesis.openapi.from_dict(build_document())


def test_the_server_serves_this_document(api_server: Server) -> None:
    answer = httpx.get(api_server.base_url + "/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == schema.raw_schema


# Every default check but positive_data_acceptance: a document cannot say which numbers
# are assigned, which providers are configured or which message ids exist, so a request
# it allows may still be refused (400, 404, 422); such refusals are tested elsewhere.
EXCLUDED = [positive_data_acceptance]


def bounded(test: Callable[..., None]) -> Callable[..., None]:
    """Each operation's examples, kept few enough for CI."""
    return settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))(test)


def repaired_by_our_token(case: schemathesis.Case, token: str | None) -> bool:
    """A negative case whose headers lack ``Authorization`` is made valid there by the
    token the test adds, so it cannot be expected to be refused."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    negative = headers is not None and headers.mode == GenerationMode.NEGATIVE
    sent = {name.lower() for name in case.headers or {}}
    return bool(token) and negative and "authorization" not in sent


def call_and_validate(case: schemathesis.Case, server: Server, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    excluded = EXCLUDED
    if repaired_by_our_token(case, token):
        excluded = [*EXCLUDED, negative_data_rejection]
    case.call_and_validate(
        base_url=server.base_url, headers=headers, timeout=10, excluded_checks=excluded
    )


@schema.parametrize()
@bounded
def test_without_a_token(case: schemathesis.Case, api_server: Server) -> None:
    call_and_validate(case, api_server, None)


# With a token, GET /v1/changes/stream answers a stream that stays open (Server-Sent
# Events), which no call here could read to its end; its refusals are tested in
# tests/feed/test_feed_e2e.py.
with_token = schema.exclude(path="/v1/changes/stream")


@with_token.parametrize()
@bounded
def test_with_a_viewer_token(
    case: schemathesis.Case, api_server: Server, tokens: dict[str, str]
) -> None:
    call_and_validate(case, api_server, tokens["viewer"])


@with_token.parametrize()
@bounded
def test_with_an_admin_token(
    case: schemathesis.Case, api_server: Server, tokens: dict[str, str]
) -> None:
    call_and_validate(case, api_server, tokens["admin"])
