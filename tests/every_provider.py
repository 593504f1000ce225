"""A provider of every type, and, for each, a correctly signed report whose own timestamp
field carries a given text (the chaos tests) or the time now (``current_report``, the
provider conformance suite).

The same config serves a real ``receiver serve`` (``PROVIDERS`` in its config file) and
the in-process parsers (``provider(name)``), so a request built here verifies in both.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.providers import PROVIDER_TYPES, Provider
from receiver.providers.sinch import provider_message_id as sinch_message_id
from receiver.testing import (
    SignedRequest,
    bird_report,
    bird_request,
    futuresms_report,
    futuresms_request,
    infobip_request,
    infobip_result,
    jasmin_dlr,
    jasmin_request,
    plivo_report,
    plivo_request,
    relayos_report,
    relayos_request,
    sendcomms_event,
    sendcomms_request,
    sinch_recipient_report,
    sinch_request,
    smstools_report,
    smstools_request,
    standard_report,
    standard_request,
    telnyx_event,
    telnyx_public_key,
    telnyx_request,
    twilio_report,
    twilio_request,
    txtly_event,
    txtly_request,
    vonage_message_status,
    vonage_messages_request,
    vonage_sms_report,
    vonage_sms_request,
)
from receiver.testing.pytest_plugin import new_whsec

TELNYX_KEY = Ed25519PrivateKey.generate()

PROVIDERS: dict[str, dict[str, Any]] = {
    "standard": {"type": "standard", "secrets": [new_whsec()]},
    "twilio": {"type": "twilio", "secrets": [secrets.token_hex(16)]},
    "vonage": {
        "type": "vonage",
        "secrets": [secrets.token_urlsafe(24)],
        "signature_method": "sha256",
    },
    "plivo": {"type": "plivo", "secrets": [secrets.token_urlsafe(30)]},
    "telnyx": {"type": "telnyx", "public_key": telnyx_public_key(TELNYX_KEY)},
    "sinch": {"type": "sinch", "auth": "hmac", "secrets": [secrets.token_urlsafe(16)]},
    "infobip": {"type": "infobip", "secrets": ["infobip:s3cret-pass"]},
    "bird": {"type": "bird", "secrets": [secrets.token_urlsafe(24)]},
    "jasmin": {"type": "jasmin", "secrets": ["jasmin:s3cret-pass"]},
    "futuresms": {"type": "futuresms", "url_token": secrets.token_urlsafe(24)},
    "relayos": {"type": "relayos", "url_token": secrets.token_urlsafe(24)},
    "smstools": {"type": "smstools", "url_token": secrets.token_urlsafe(24)},
    "txtly": {"type": "txtly", "secrets": ["whsec_" + secrets.token_hex(16)]},
    "sendcomms": {"type": "sendcomms", "secrets": [secrets.token_urlsafe(24)]},
}
"""``[providers.NAME]`` tables: the name is the type."""


def provider(name: str) -> Provider:
    """The in-process provider of ``PROVIDERS[name]``."""
    table = PROVIDERS[name]
    kind = PROVIDER_TYPES[table["type"]]
    return kind(name, kind.config_model.model_validate(table))


def secret(name: str) -> str:
    return str(PROVIDERS[name]["secrets"][0])


def token(name: str) -> str:
    return str(PROVIDERS[name]["url_token"])


@dataclass(frozen=True)
class Stamped:
    """A signed report and where its timestamp is."""

    request: SignedRequest
    field: str
    """The name a 400 gives the timestamp field."""
    provider_message_id: str

    @property
    def provider(self) -> str:
        """The provider's name, from ``/webhooks/NAME[?query]``."""
        return self.request.path.removeprefix("/webhooks/").partition("?")[0]


Builder = Callable[[str, str], Stamped]
"""(timestamp text, public base URL) -> a signed report carrying it."""


def _standard(stamp: str, base_url: str) -> Stamped:
    pmid = f"std-{uuid.uuid4().hex}"
    data = standard_report(pmid, "delivered") | {"occurred_at": stamp}
    return Stamped(
        standard_request(secret("standard"), data, provider="standard"), "data.occurred_at", pmid
    )


def _standard_batch(stamp: str, base_url: str) -> Stamped:
    """A batch whose second report carries the timestamp."""
    first, second = (f"std-{uuid.uuid4().hex}" for _ in range(2))
    data = [standard_report(first, "sent"), standard_report(second, "delivered")]
    data[1]["occurred_at"] = stamp
    request = standard_request(secret("standard"), data, provider="standard")
    return Stamped(request, "data[1].occurred_at", second)


def _vonage_messages(stamp: str, base_url: str) -> Stamped:
    pmid = str(uuid.uuid4())
    payload = vonage_message_status(pmid, "delivered", timestamp=stamp)
    request = vonage_messages_request(secret("vonage"), payload, provider="vonage")
    return Stamped(request, "timestamp", pmid)


def _vonage_sms(stamp: str, base_url: str) -> Stamped:
    pmid = uuid.uuid4().hex[:16].upper()
    report = vonage_sms_report(pmid, "delivered", msisdn="447547232824", message_timestamp=stamp)
    request = vonage_sms_request(
        secret("vonage"), report, provider="vonage", signature_method="sha256"
    )
    return Stamped(request, "message-timestamp", pmid)


def _twilio(stamp: str, base_url: str) -> Stamped:
    """Twilio's only time, ``RawDlrDoneDate``, is not read (its zone varies by carrier)."""
    pmid = "SM" + uuid.uuid4().hex
    params = twilio_report(pmid, "delivered", extra={"RawDlrDoneDate": stamp})
    request = twilio_request(secret("twilio"), params, public_base_url=base_url, provider="twilio")
    return Stamped(request, "RawDlrDoneDate", pmid)


def _plivo(stamp: str, base_url: str) -> Stamped:
    pmid = str(uuid.uuid4())
    params = plivo_report(pmid, "delivered") | {"DeliveryReportTime": stamp}
    request = plivo_request(secret("plivo"), params, provider="plivo", public_base_url=base_url)
    return Stamped(request, "DeliveryReportTime", pmid)


def _telnyx(stamp: str, base_url: str) -> Stamped:
    pmid = str(uuid.uuid4())
    event = telnyx_event(pmid, "delivered")
    event["data"]["occurred_at"] = stamp
    return Stamped(telnyx_request(TELNYX_KEY, event, provider="telnyx"), "data.occurred_at", pmid)


def _sinch(stamp: str, base_url: str) -> Stamped:
    batch = uuid.uuid4().hex.upper()
    payload = sinch_recipient_report(
        batch_id=batch, recipient="12017777777", status="Delivered", code=0
    )
    payload["at"] = stamp
    request = sinch_request(payload, secret=secret("sinch"), provider="sinch")
    return Stamped(request, "at", sinch_message_id(batch, "12017777777"))


def _infobip(stamp: str, base_url: str) -> Stamped:
    pmid = str(uuid.uuid4())
    result = infobip_result(message_id=pmid) | {"doneAt": stamp}
    request = infobip_request(secret("infobip"), [result], provider="infobip")
    return Stamped(request, "results[0].doneAt", pmid)


def _bird(stamp: str, base_url: str) -> Stamped:
    pmid = uuid.uuid4().hex
    report = bird_report(message_id=pmid, status="delivered") | {"statusDatetime": stamp}
    request = bird_request(
        signing_key=secret("bird"), report=report, public_base_url=base_url, provider="bird"
    )
    return Stamped(request, "statusDatetime", pmid)


def _jasmin(stamp: str, base_url: str) -> Stamped:
    pmid = str(uuid.uuid4())
    params = jasmin_dlr(message_id=pmid, message_status="DELIVRD") | {"donedate": stamp}
    return Stamped(jasmin_request(secret("jasmin"), params, provider="jasmin"), "donedate", pmid)


def _futuresms(stamp: str, base_url: str) -> Stamped:
    pmid = f"ORD{uuid.uuid4().hex[:12]}"
    report = futuresms_report(pmid, "DELIVRD", reported_at=stamp)
    request = futuresms_request(report, provider="futuresms", token=token("futuresms"))
    return Stamped(request, "reported_at", pmid)


def _relayos(stamp: str, base_url: str) -> Stamped:
    pmid = f"msg_{uuid.uuid4().hex}"
    report = relayos_report(pmid, "DELIVERED") | {"occurred_at": stamp}
    request = relayos_request(report, url_token=token("relayos"), provider="relayos")
    return Stamped(request, "occurred_at", pmid)


def _txtly(stamp: str, base_url: str) -> Stamped:
    pmid = str(uuid.uuid4())
    event = txtly_event(pmid, "delivered") | {"created_at": stamp}
    return Stamped(txtly_request(secret("txtly"), event, provider="txtly"), "created_at", pmid)


def _sendcomms(stamp: str, base_url: str) -> Stamped:
    pmid = f"sms_{uuid.uuid4().hex[:12]}"
    event = sendcomms_event("sms.delivered", pmid) | {"timestamp": stamp}
    request = sendcomms_request(secret("sendcomms"), event, provider="sendcomms")
    return Stamped(request, "timestamp", pmid)


def _smstools(stamp: str, base_url: str) -> Stamped:
    """Smstools writes ``YYYY-MM-DD HH:MM:SS`` in the account's time zone."""
    pmid = uuid.uuid4().hex
    event = smstools_report(pmid, "1", timezone="Etc/GMT-1")  # UTC+1 in every year
    event["message"]["delivery_status_datetime"] = stamp
    request = smstools_request(event, token=token("smstools"), provider="smstools")
    return Stamped(request, "[0].message.delivery_status_datetime", pmid)


ISO_BUILDERS: dict[str, Builder] = {
    "standard": _standard,
    "standard-batch": _standard_batch,
    "vonage-messages": _vonage_messages,
    "plivo": _plivo,
    "telnyx": _telnyx,
    "sinch": _sinch,
    "infobip": _infobip,
    "bird": _bird,
    "futuresms": _futuresms,
    "relayos": _relayos,
    "txtly": _txtly,
    "sendcomms": _sendcomms,
}
"""Types whose timestamp is an ISO 8601 date and time with an offset."""

OTHER_BUILDERS: dict[str, Builder] = {
    "vonage-sms": _vonage_sms,  # YYYY-MM-DD hh:mm:ss, UTC
    "jasmin": _jasmin,  # SMPP YYMMDDhhmm, 2000-2099
    "twilio": _twilio,  # not read
    "smstools": _smstools,  # YYYY-MM-DD hh:mm:ss in the account's zone
}


CURRENT: dict[str, tuple[Builder, str]] = {
    "standard": (_standard, "iso"),
    "twilio": (_twilio, "iso"),
    "vonage": (_vonage_messages, "iso"),
    "plivo": (_plivo, "plain"),
    "telnyx": (_telnyx, "iso"),
    "sinch": (_sinch, "iso"),
    "infobip": (_infobip, "iso"),
    "bird": (_bird, "iso"),
    "jasmin": (_jasmin, "smpp"),
    "futuresms": (_futuresms, "iso"),
    "relayos": (_relayos, "iso"),
    "smstools": (_smstools, "utc+1"),
    "txtly": (_txtly, "iso"),
    "sendcomms": (_sendcomms, "iso"),
}
"""Per type: the builder of its report, and how it writes a time."""


def current_report(kind: str, base_url: str) -> Stamped:
    """A correctly signed ``delivered`` report of type ``kind`` for the provider of that
    name, timed a minute ago in the type's own format."""
    build, form = CURRENT[kind]
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    stamp = {
        "iso": moment.isoformat().replace("+00:00", "Z"),
        "plain": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "smpp": moment.strftime("%y%m%d%H%M"),
        "utc+1": (moment + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
    }[form]
    return build(stamp, base_url)
