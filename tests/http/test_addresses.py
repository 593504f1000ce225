"""Who called and which URL they called: X-Forwarded-* counts only from trusted proxies."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer
from starlette.requests import Request

from receiver.config import load
from receiver.errors import SignatureError
from receiver.http.webhooks import check_source, client_address, public_url
from receiver.services.admission import Admission
from receiver.services.metrics import Metrics
from receiver.services.state import AppState
from receiver.store.sqlite import SqliteStore
from tests.conftest import write_config


def state_for(tmp_path, **settings) -> AppState:
    config = load(write_config(tmp_path, settings))
    return AppState(
        config=config,
        store=SqliteStore(config.sqlite_path),
        metrics=Metrics(),
        cursors=URLSafeSerializer(config.settings.session_secret),
        admission=Admission(config.settings.send_rate_limits),
    )


def request(
    peer: str,
    headers: dict[str, str],
    raw_path: bytes = b"/webhooks/default",
    query: bytes = b"a=1&b=%2B2",
) -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "client": (peer, 50000),
            "path": raw_path.decode(),
            "raw_path": raw_path,
            "query_string": query,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )


FORWARDED = {
    "x-forwarded-for": "198.51.100.9, 203.0.113.7, 10.0.0.2",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "dlr.example.com",
}


def test_without_trusted_proxies_forwarded_headers_are_ignored(tmp_path):
    state = state_for(tmp_path, public_base_url="https://public.example.org/base")
    req = request("10.0.0.1", FORWARDED)
    assert client_address(req, state) == "10.0.0.1"
    # public_base_url + the raw path and query exactly as received (still percent-encoded)
    assert public_url(req, state) == "https://public.example.org/base/webhooks/default?a=1&b=%2B2"


def test_a_trusted_proxy_supplies_the_caller_and_the_public_url(tmp_path):
    state = state_for(tmp_path, trusted_proxies=["10.0.0.0/8"])
    req = request("10.0.0.1", FORWARDED)
    # the last hop that is not a trusted proxy is the caller; earlier hops are client-supplied
    assert client_address(req, state) == "203.0.113.7"
    assert public_url(req, state) == "https://dlr.example.com/webhooks/default?a=1&b=%2B2"


def test_an_untrusted_peer_cannot_claim_a_forwarded_address(tmp_path):
    state = state_for(tmp_path, trusted_proxies=["10.0.0.0/8"])
    req = request("192.0.2.50", FORWARDED)
    assert client_address(req, state) == "192.0.2.50"
    assert public_url(req, state).startswith("http://127.0.0.1:8000/webhooks/default")


def test_a_garbled_forwarded_chain_yields_no_address(tmp_path):
    state = state_for(tmp_path, trusted_proxies=["10.0.0.0/8"])
    req = request("10.0.0.1", {"x-forwarded-for": "not-an-ip"})
    assert client_address(req, state) is None


def test_check_source_against_allowed_ips():
    import ipaddress

    allowed = [ipaddress.ip_network("203.0.113.0/24")]
    check_source("203.0.113.7", allowed)
    check_source("198.51.100.1", [])  # no allow-list: anyone
    for address in ("198.51.100.1", None, "garbage"):
        with pytest.raises(SignatureError) as info:
            check_source(address, allowed)
        assert info.value.code == "SOURCE_NOT_ALLOWED"
