"""Hypothesis against every provider's ``verify`` and ``parse``, in process (sans-IO).

Half of the examples are correctly signed reports of the type whose own timestamp field
holds a time at the edge of the range (in the type's format and others); the other half
start from a well-formed one and break it: a JSON value, a parameter or a header
replaced (by anything, edge times included), the body or the content type replaced, the
method flipped, and half of those are signed again, so the parser sees them past the
signature.
Only the documented errors may come out: ``SignatureError``, ``PayloadInvalid``, and
``RetryLater`` for Vonage (an unsigned Messages API callback). Every report that comes
out has an aware UTC ``occurred_at`` that the store can write and read back.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from every_provider import (
    ISO_BUILDERS,
    OTHER_BUILDERS,
    TELNYX_KEY,
    provider,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.core.signatures import telnyx_ed25519
from receiver.errors import CannotResign, PayloadInvalid, RetryLater, SignatureError
from receiver.providers.base import InboundRequest, WebhookRequest, media_type_of
from receiver.store.base import from_text, to_text

BASE_URL = "https://dlr.example.com"
NORMAL = {
    "vonage-sms": "2026-11-23 09:59:58",
    "smstools": "2026-11-23 09:59:58",
    "jasmin": "2611230959",
}
BUILDERS = {**ISO_BUILDERS, **OTHER_BUILDERS}


def signed_now(kind: str) -> Any:
    """A correctly signed, well-formed report of ``kind``, signed now (a signature's
    timestamp goes stale after the tolerance)."""
    return BUILDERS[kind](NORMAL.get(kind, "2026-11-23T09:59:58Z"), BASE_URL)


BASES = {kind: signed_now(kind) for kind in BUILDERS}
"""A report of every type (and shape) to start from; signed at import, so only for
tests that do not need the signature to verify at its time."""

# --- strategies ------------------------------------------------------------------------------

offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
edge_moments = st.one_of(
    st.datetimes(max_value=datetime(1, 1, 2), timezones=offsets),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=offsets),
    st.datetimes(timezones=offsets),
)
FORMATS = (
    datetime.isoformat,
    lambda moment: moment.isoformat(sep=" "),
    lambda moment: moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    lambda moment: moment.isoformat()[:-3] + moment.isoformat()[-2:],  # +hhmm (Infobip)
    lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S"),  # Vonage, Plivo: no zone
    lambda moment: moment.strftime("%y%m%d%H%M"),  # SMPP
    lambda moment: format_datetime(moment),  # RFC 2822
    lambda moment: str(int(moment.timestamp())),  # Unix seconds
)
edge_times = st.one_of(
    st.builds(lambda moment, fmt: fmt(moment), edge_moments, st.sampled_from(FORMATS)),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-11-23T09:59:60Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T09:59:58+24:00",
            "-0001-01-01T00:00:00Z",
            "999999999999",
            "-62135596801",
            "1e309",
            "NaN",
        ]
    ),
)
latin1 = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n\x00"), max_size=40)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**30, -(10**30), 2**63, 253402300800, -62135596801]),
    st.floats(),
    st.text(max_size=30),
    edge_times,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
    ]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, the value itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


@st.composite
def broken(draw: st.DrawFn, base: WebhookRequest) -> WebhookRequest:
    """``base`` with one thing broken."""
    headers = dict(base.headers)
    path, _, query = base.path.partition("?")
    body = base.body
    method = base.method
    how = draw(st.sampled_from(["json", "params", "header", "body", "content-type", "method"]))
    if how == "json":
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        where = draw(st.sampled_from(_paths(payload)))
        payload = _replace(payload, where, draw(json_values))
        body = json.dumps(payload).encode()
    elif how == "params":
        in_query = method == "GET" or not body
        pairs = parse_qsl(query if in_query else body.decode(), keep_blank_values=True)
        pairs.append((draw(st.text(max_size=8)), ""))
        index = draw(st.integers(0, len(pairs) - 1))
        value = draw(st.one_of(edge_times, st.text(max_size=30)))
        pairs[index] = (pairs[index][0], value)
        if draw(st.booleans()):
            pairs.append(pairs[index])  # the same parameter twice
        if in_query:
            query = urlencode(pairs)
        else:
            body = urlencode(pairs).encode()
    elif how == "header":
        name = draw(st.sampled_from([*headers, "authorization", "content-type"]))
        if draw(st.booleans()):
            headers.pop(name, None)
        else:
            headers[name] = draw(st.one_of(edge_times, latin1))
    elif how == "body":
        body = draw(st.binary(max_size=200))
    elif how == "content-type":
        headers["content-type"] = draw(content_types)
    else:
        method = "GET" if method == "POST" else "POST"
    return WebhookRequest(path + (f"?{query}" if query else ""), body, headers, method)


def signed_again(name: str, request: WebhookRequest) -> WebhookRequest:
    """``request`` signed afresh as the provider would sign it (unchanged if it cannot be)."""
    now = int(time.time())
    if name == "telnyx":
        headers = request.headers | {
            telnyx_ed25519.TIMESTAMP_HEADER: str(now),
            telnyx_ed25519.SIGNATURE_HEADER: telnyx_ed25519.sign(TELNYX_KEY, now, request.body),
        }
        return WebhookRequest(request.path, request.body, headers, request.method)
    try:
        return provider(name).resign(request, public_base_url=BASE_URL, now=now)
    except CannotResign:
        return request


def assert_only_documented_errors(name: str, request: WebhookRequest) -> None:
    documented: tuple[type[Exception], ...] = (SignatureError, PayloadInvalid)
    if name == "vonage":
        documented += (RetryLater,)
    parser = provider(name)
    inbound = InboundRequest.captured(request, BASE_URL, datetime.now(UTC))
    assert inbound.media_type == media_type_of(inbound.headers)
    with contextlib.suppress(*documented):
        parser.verify(inbound, time.time())
    try:
        reports = parser.parse(inbound)  # as with insecure_no_signature, whatever verify said
    except documented:
        return
    for report in reports:
        assert report.occurred_at.utcoffset() == timedelta(0), report
        assert from_text(to_text(report.occurred_at)) == report.occurred_at


@pytest.mark.parametrize("kind", BASES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_broken_report_raises_only_documented_errors(kind: str, data: st.DataObject) -> None:
    base = BASES[kind]
    if data.draw(st.booleans(), label="edge time in its own field"):
        request = BUILDERS[kind](data.draw(edge_times, label="time"), BASE_URL).request
    else:
        request = data.draw(broken(base.request), label="request")
    if data.draw(st.booleans(), label="signed again"):
        request = signed_again(base.provider, request)
    assert_only_documented_errors(base.provider, request)


@pytest.mark.parametrize("kind", BASES)
def test_the_unbroken_reports_parse(kind: str) -> None:
    base = signed_now(kind)  # the suite may run this long after it imported BASES
    parser = provider(base.provider)
    inbound = InboundRequest.captured(base.request, BASE_URL, datetime.now(UTC))
    parser.verify(inbound, time.time())
    assert parser.parse(inbound)
