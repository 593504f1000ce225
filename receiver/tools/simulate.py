"""`receiver simulate` (README "Commands"): a realistic, correctly signed report stream.

For the configured provider NAME, ``--messages N`` messages each get a status sequence
in that provider type's own vocabulary and format (``queued -> sent -> delivered``,
``accepted -> failed`` with one of the provider's error codes, some expired or
rejected), with increasing provider timestamps. A fraction ``--duplicates F`` of the
reports is sent twice and ``--shuffle`` mixes the whole stream (out-of-order
delivery). Everything but the signatures is a pure function of ``--seed`` and
``--start``, so the same seed gives the same stream and the same expectations.

Every request is built twice: once up front, parsed by the configured provider's own
``parse()`` so the expected final statuses come from the real mapping and the one merge
rule (``receiver.core.status.merge``); and again just before it is posted, so
time-limited signatures (Standard Webhooks, Vonage, Sinch HMAC, MessageBird JWT) are
fresh however long the stream takes.

``--verify-token`` then looks every message up through the staff API and compares its
status and error code. Exit 0 when everything matched, 1 on any mismatch or non-2xx
answer, 2 on bad usage or config.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import random
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.cli import UsageError
from receiver.config import Config, load, resolve_path
from receiver.core.reports import Report
from receiver.core.signatures import telnyx_ed25519
from receiver.core.status import MessageState, merge
from receiver.core.timestamps import parse_iso
from receiver.errors import ConfigError, ReceiverError
from receiver.providers.base import InboundRequest, Provider, WebhookRequest
from receiver.providers.vonage import VonageConfig
from receiver.testing import (
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
from receiver.testing.sendcomms import sendcomms_transaction_id

LIST_LIMIT = 100
"""Up to this many messages every one gets a line; above it only mismatches do."""
RETRIES = 3
"""Extra attempts for a request whose connection failed (never for an HTTP answer)."""

Build = Callable[[], WebhookRequest]


# --------------------------------------------------------------------------- journeys


@dataclass(frozen=True)
class Step:
    """One status report of one message: the provider's word, its error, when."""

    word: str
    at: datetime
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Journey:
    """A message's life in one provider's words: ``words`` in order, the last one
    possibly failing with one of ``errors`` (code, description)."""

    weight: int
    words: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()


def _journey(weight: int, words: str, *errors: tuple[str, str]) -> Journey:
    return Journey(weight, tuple(words.split()), errors)


JOURNEYS: dict[str, tuple[Journey, ...]] = {
    "standard": (
        _journey(70, "queued sent delivered"),
        _journey(10, "queued sent undelivered", ("absent_subscriber", "Absent subscriber")),
        _journey(5, "queued sent expired", ("validity_expired", "Validity period expired")),
        _journey(5, "queued rejected", ("blocked", "Blocked by the destination network")),
        _journey(5, "queued failed", ("invalid_destination", "Invalid destination number")),
        _journey(5, "queued sent"),
    ),
    "twilio": (
        _journey(65, "queued sending sent delivered"),
        _journey(5, "accepted queued sent delivered"),
        _journey(
            12,
            "queued sent undelivered",
            ("30003", "Unreachable destination handset"),
            ("30005", "Unknown destination handset"),
            ("30006", "Landline or unreachable carrier"),
            ("30007", "Message filtered"),
        ),
        _journey(
            8,
            "queued failed",
            ("30008", "Unknown error"),
            ("21610", "Attempt to send to unsubscribed recipient"),
            ("30034", "Message from an unregistered number"),
        ),
        _journey(10, "queued sending sent"),
    ),
    "vonage": (
        _journey(55, "accepted delivered"),
        _journey(10, "accepted buffered delivered"),
        _journey(
            10,
            "accepted failed",
            ("2", "Absent Subscriber - Temporary"),
            ("3", "Absent Subscriber - Permanent"),
            ("9", "Illegal Number"),
            ("12", "Destination Unreachable"),
        ),
        _journey(5, "accepted buffered expired", ("1", "Unknown")),
        _journey(5, "rejected", ("6", "Anti-Spam Rejection"), ("14", "Number Blocked by Carrier")),
        _journey(5, "accepted"),
        # The Messages API, on the same account (``submitted``, ``undeliverable``, ...).
        _journey(7, "submitted delivered"),
        _journey(
            3,
            "submitted undeliverable",
            ("1320", "Message failed because the number is not reachable"),
            ("1340", "Message failed because the recipient blocked it"),
        ),
    ),
    "plivo": (
        _journey(70, "queued sent delivered"),
        _journey(
            12,
            "queued sent undelivered",
            ("20", "Network Error"),
            ("50", "Invalid Destination Number"),
        ),
        _journey(5, "queued failed", ("10", "Invalid Message"), ("40", "Invalid Source Number")),
        _journey(5, "queued rejected", ("30", "Spam Detected")),
        _journey(8, "queued sent"),
    ),
    "telnyx": (
        _journey(70, "queued sent delivered"),
        _journey(
            12,
            "queued sent delivery_failed",
            ("40001", "Not routable"),
            ("40008", "Undeliverable"),
        ),
        _journey(5, "queued sending_failed", ("40300", "Blocked as spam")),
        _journey(5, "queued sent expired", ("40006", "Recipient server unavailable")),
        _journey(8, "queued sent"),
    ),
    "sinch": (
        _journey(70, "Queued Dispatched Delivered"),
        _journey(10, "Queued Dispatched Failed", ("402", "Message unroutable"), ("404", "x")),
        _journey(5, "Queued Dispatched Expired", ("406", "Internal expiry")),
        _journey(5, "Queued Rejected", ("408", "Internal reject"), ("413", "Blocked")),
        _journey(2, "Queued Cancelled", ("407", "Cancelled")),
        _journey(8, "Queued Dispatched"),
    ),
    "infobip": (
        _journey(70, "PENDING_ACCEPTED PENDING_ENROUTE DELIVERED_TO_HANDSET"),
        _journey(5, "PENDING_ENROUTE DELIVERED_TO_OPERATOR DELIVERED_TO_HANDSET"),
        _journey(
            10,
            "PENDING_ACCEPTED PENDING_ENROUTE UNDELIVERABLE_NOT_DELIVERED",
            ("1", "EC_UNKNOWN_SUBSCRIBER"),
            ("5", "EC_UNIDENTIFIED_SUBSCRIBER"),
            ("27", "EC_ABSENT_SUBSCRIBER"),
        ),
        _journey(
            5, "PENDING_ACCEPTED PENDING_ENROUTE EXPIRED_EXPIRED", ("27", "EC_ABSENT_SUBSCRIBER")
        ),
        _journey(
            5,
            "PENDING_ACCEPTED UNDELIVERABLE_REJECTED_OPERATOR",
            ("11", "EC_TELESERVICE_NOT_PROVISIONED"),
        ),
        _journey(5, "PENDING_ACCEPTED PENDING_ENROUTE"),
    ),
    "bird": (
        _journey(65, "sent delivered"),
        _journey(10, "scheduled sent buffered delivered"),
        _journey(
            12,
            "sent delivery_failed",
            ("1", "unknown subscriber"),
            ("27", "absent subscriber"),
            ("104", "carrier rejected"),
        ),
        _journey(5, "sent buffered expired", ("27", "absent subscriber")),
        _journey(8, "sent buffered"),
    ),
    "jasmin": (
        _journey(70, "ESME_ROK DELIVRD"),
        _journey(5, "ESME_ROK ENROUTE DELIVRD"),
        _journey(10, "ESME_ROK UNDELIV", ("001", "x"), ("00B", "x"), ("045", "x")),
        _journey(5, "ESME_ROK EXPIRED", ("027", "x")),
        _journey(3, "ESME_ROK REJECTD", ("00D", "x")),
        _journey(3, "ESME_RINVDSTADR"),
        _journey(4, "ESME_ROK"),
    ),
    # FutureSMS posts a DLR once a delivery report is matched to the order; the words are
    # SMPP receipt states (docs/providers/futuresms.md). No error codes.
    "futuresms": (
        _journey(72, "DELIVRD"),
        _journey(8, "ENROUTE DELIVRD"),
        _journey(8, "UNDELIV"),
        _journey(5, "EXPIRED"),
        _journey(4, "REJECTD"),
        _journey(3, "UNKNOWN"),
    ),
    "relayos": (  # WhatsApp: callbacks start at SENT; FAILED carries no error code
        _journey(55, "SENT DELIVERED READ"),
        _journey(25, "SENT DELIVERED"),
        _journey(10, "SENT FAILED"),
        _journey(3, "FAILED"),
        _journey(7, "SENT"),
    ),
    # Smstools' delivery codes: 0 submitted, 1 delivered, 2 not delivered, 3 buffered,
    # 4/5 rejected (5 with a detail code), 9 unknown.
    "smstools": (
        _journey(65, "0 1"),
        _journey(10, "0 3 1"),
        _journey(
            10,
            "0 2",
            ("11", "Receiver is temporarily outside the range of the network"),
            ("10", "Receiver number is invalid or unknown"),
        ),
        _journey(3, "0 4"),
        _journey(4, "0 5", ("10", "Receiver number is invalid or unknown")),
        _journey(3, "0 9"),
        _journey(5, "0"),
    ),
    # Txtly documents no SMS events: the sms.* words its parser reads (docs/providers/txtly.md).
    "txtly": (
        _journey(70, "sent delivered"),
        _journey(8, "sent delivery_delayed delivered"),
        _journey(10, "sent bounced"),
        _journey(5, "sent failed"),
        _journey(7, "sent"),
    ),
    # The send route posts sms.sent or sms.failed at submission; sms.delivered is
    # documented (no producer in SendComms' server yet). Failures carry text, no code.
    "sendcomms": (
        _journey(70, "sms.sent sms.delivered"),
        _journey(20, "sms.sent"),
        _journey(
            10,
            "sms.failed",
            ("", "Africa SMS server unavailable"),
            ("", "This recipient has opted out of receiving messages from this number."),
        ),
    ),
}

# Words after which a message waits long (a carrier's verdict); others follow quickly.
_SLOW = frozenset(
    {
        *("delivered", "undelivered", "expired", "failed", "buffered", "delivery_failed"),
        *("Delivered", "Failed", "Expired", "DELIVRD", "UNDELIV", "EXPIRED"),
        *("DELIVERED_TO_HANDSET", "UNDELIVERABLE_NOT_DELIVERED", "EXPIRED_EXPIRED"),
        *("DELIVERED", "READ", "FAILED"),  # relayos
        "sms.delivered",
    }
)
_EXPIRY = frozenset({"expired", "Expired", "EXPIRED_EXPIRED", "EXPIRED"})


def _steps(rng: random.Random, journey: Journey, sent_at: datetime) -> list[Step]:
    """Increasing provider timestamps for ``journey``'s words, starting at ``sent_at``."""
    steps = []
    moment = sent_at
    error = rng.choice(journey.errors) if journey.errors else None
    for index, word in enumerate(journey.words):
        if index:
            if word in _EXPIRY:
                moment += timedelta(hours=rng.uniform(4, 48))
            elif word in _SLOW:
                moment += timedelta(seconds=rng.uniform(2, 90))
            else:
                moment += timedelta(milliseconds=rng.randint(120, 4000))
        last = index == len(journey.words) - 1
        code, detail = error if (last and error) else (None, None)
        steps.append(
            Step(word, moment.replace(microsecond=moment.microsecond // 1000 * 1000), code, detail)
        )
    return steps


def _plan(rng: random.Random, journeys: Sequence[Journey], count: int) -> list[Journey]:
    """``count`` journeys in proportion to their weights (largest remainder), in a
    random order: a stream of a dozen messages already has each kind of failure."""
    total = sum(journey.weight for journey in journeys)
    quotas = [count * journey.weight / total for journey in journeys]
    counts = [int(quota) for quota in quotas]
    by_remainder = sorted(range(len(journeys)), key=lambda i: counts[i] - quotas[i])
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    plan = [journey for journey, n in zip(journeys, counts, strict=True) for _ in range(n)]
    rng.shuffle(plan)
    return plan


# --------------------------------------------------------------------------- builders


@dataclass
class Context:
    """What every builder needs: the provider, its secret and the signed base URL."""

    provider: Provider
    secret: str | None
    public_base_url: str
    telnyx_key: Ed25519PrivateKey | None = None

    @property
    def name(self) -> str:
        return self.provider.name


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _phone(rng: random.Random, country: str = "1") -> str:
    """A plausible mobile number, digits only (no ``+``)."""
    if country == "1":
        return f"1{rng.choice(['201', '415', '646', '917'])}555{rng.randint(0, 9999):04d}"
    return f"{country}{rng.randint(600000000, 799999999)}"


def _smpp_minutes(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%y%m%d%H%M")


_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass
class Message:
    """One simulated message: its reports' factories, in provider-time order."""

    index: int
    builds: list[Build] = field(default_factory=list)


MessageMaker = Callable[[random.Random, Context, int, Journey, datetime], list[Build]]


def _standard(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_id = f"sim-{_hex(rng, 12)}"
    to = "+" + _phone(rng)
    builds: list[Build] = []
    secret = ctx.secret or ""
    for step in _steps(rng, journey, sent_at):
        report = standard_report(
            message_id,
            step.word,
            occurred_at=step.at,
            to=to,
            error_code=step.error,
            error_message=step.detail,
            client_reference=f"order-{index}",
        )
        event_id = f"msg_{_hex(rng, 24)}"

        def build(report: dict[str, Any] = report, event_id: str = event_id) -> WebhookRequest:
            return standard_request(secret, report, provider=ctx.name, event_id=event_id)

        builds.append(build)
    return builds


def _twilio(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    sid = "SM" + _hex(rng, 32)
    to = "+" + _phone(rng)
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        params = twilio_report(sid, step.word, to=to, error_code=step.error)
        if step.word in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = step.at.strftime("%y%m%d%H%M")

        def build(params: dict[str, str] = params) -> WebhookRequest:
            return twilio_request(
                ctx.secret or "", params, public_base_url=ctx.public_base_url, provider=ctx.name
            )

        builds.append(build)
    return builds


def _vonage(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    msisdn = _phone(rng, "44")
    builds: list[Build] = []
    config = ctx.provider.config
    method = config.signature_method if isinstance(config, VonageConfig) else "md5hash"
    secret = ctx.secret or ""
    if journey.words[0] == "submitted":  # the Messages API
        message_uuid = _uuid(rng)
        for step in _steps(rng, journey, sent_at):
            error = None
            if step.error:
                error = {
                    "type": f"https://developer.vonage.com/api-errors/messages#{step.error}",
                    "title": step.error,
                    "detail": step.detail,
                    "instance": _uuid(rng),
                }
            payload = vonage_message_status(
                message_uuid,
                step.word,
                to=msisdn,
                from_="Acme",
                timestamp=step.at,
                client_ref=f"order-{index}",
                error=error,
            )

            def build_messages(payload: dict[str, Any] = payload) -> WebhookRequest:
                return vonage_messages_request(secret, payload, provider=ctx.name)

            builds.append(build_messages)
        return builds
    message_id = _hex(rng, 16).upper()
    network = rng.choice(["23410", "23415", "23420", "23430"])
    for step in _steps(rng, journey, sent_at):
        err = step.error or ("0" if step.word in ("delivered", "accepted", "buffered") else "99")
        report = vonage_sms_report(
            message_id,
            step.word,
            msisdn=msisdn,
            to="Acme",
            network_code=network,
            price="0.03330000",
            err_code=err,
            scts=_smpp_minutes(step.at),
            message_timestamp=step.at,
            client_ref=f"order-{index}",
        )

        def build_sms(report: dict[str, str] = report) -> WebhookRequest:
            return vonage_sms_request(secret, report, provider=ctx.name, signature_method=method)

        builds.append(build_sms)
    return builds


def _plivo(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_uuid = _uuid(rng)
    to = _phone(rng)
    builds: list[Build] = []
    times: dict[str, datetime] = {}
    for sequence, step in enumerate(_steps(rng, journey, sent_at), 1):
        times.setdefault("message_time", sent_at)
        if step.word == "queued":
            times["queued_time"] = step.at
        elif step.word == "sent":
            times["sent_time"] = step.at
        else:
            times["delivery_report_time"] = step.at
        params = plivo_report(
            message_uuid,
            step.word,
            to=to,
            error_code=step.error or "000",
            sequence=sequence,
            message_time=times.get("message_time"),
            queued_time=times.get("queued_time"),
            sent_time=times.get("sent_time"),
            delivery_report_time=times.get("delivery_report_time"),
        )

        def build(params: dict[str, str] = params) -> WebhookRequest:
            return plivo_request(
                ctx.secret or "", params, provider=ctx.name, public_base_url=ctx.public_base_url
            )

        builds.append(build)
    return builds


def _telnyx(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_id = _uuid(rng)
    to = "+" + _phone(rng)
    key = ctx.telnyx_key
    if key is None:  # checked before generation
        raise UsageError("a telnyx stream needs --telnyx-private-key")
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        errors = (
            [{"code": step.error, "title": step.detail, "detail": step.detail}]
            if step.error
            else []
        )
        event = telnyx_event(
            message_id, step.word, to=to, event_id=_uuid(rng), occurred_at=step.at, errors=errors
        )

        def build(event: dict[str, Any] = event) -> WebhookRequest:
            return telnyx_request(key, event, provider=ctx.name)

        builds.append(build)
    return builds


def _sinch(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    batch_id = "01" + "".join(rng.choice(_ULID_ALPHABET) for _ in range(24))
    recipient = _phone(rng)
    basic = getattr(ctx.provider.config, "auth", "hmac") == "basic"
    builds: list[Build] = []
    codes = {"Queued": 400, "Dispatched": 401, "Delivered": 0}
    for step in _steps(rng, journey, sent_at):
        report = sinch_recipient_report(
            batch_id=batch_id,
            recipient=recipient,
            status=step.word,
            code=int(step.error) if step.error else codes.get(step.word, 0),
            at=step.at,
            client_reference=f"order-{index}",
        )

        def build(report: dict[str, Any] = report) -> WebhookRequest:
            if basic:
                return sinch_request(report, credentials=ctx.secret or "", provider=ctx.name)
            return sinch_request(report, secret=ctx.secret or "", provider=ctx.name)

        builds.append(build)
    return builds


_INFOBIP_ERROR_GROUP = (1, "HANDSET_ERRORS")


def _infobip(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_id = _uuid(rng)
    bulk_id = f"BULK-{index // 50:05d}-{_hex(rng, 8)}"
    to = _phone(rng, "41")
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        error: dict[str, Any] = {}
        if step.error:
            error = {
                "error_id": int(step.error),
                "error_name": step.detail or "EC_UNKNOWN",
                "error_group_id": _INFOBIP_ERROR_GROUP[0],
                "error_group_name": _INFOBIP_ERROR_GROUP[1],
                "permanent": step.word != "EXPIRED_EXPIRED",
            }
        result = infobip_result(
            message_id=message_id,
            status=step.word,
            to=to,
            bulk_id=bulk_id,
            sent_at=sent_at,
            done_at=step.at,
            callback_data=f"order-{index}",
            **error,
        )

        def build(result: dict[str, Any] = result) -> WebhookRequest:
            return infobip_request(ctx.secret, [result], provider=ctx.name)

        builds.append(build)
    return builds


def _bird(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_id = _hex(rng, 32)
    recipient = _phone(rng, "31")
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        reason = step.detail or {
            "delivered": "successfully delivered",
            "sent": "pending",
            "scheduled": "pending",
            "buffered": "pending",
        }.get(step.word)
        report = bird_report(
            message_id=message_id,
            status=step.word,
            recipient=recipient,
            reference=f"order-{index}",
            status_datetime=step.at.replace(microsecond=0),
            status_reason=reason,
            status_error_code=step.error,
            extra={
                "mccmnc": "20408",
                "ported": "0",
                "price[amount]": "0.070",
                "price[currency]": "EUR",
            },
        )

        def build(report: dict[str, str] = report) -> WebhookRequest:
            return bird_request(
                signing_key=ctx.secret or "",
                report=report,
                public_base_url=ctx.public_base_url,
                provider=ctx.name,
            )

        builds.append(build)
    return builds


def _jasmin(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_id = _uuid(rng)
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        if step.word.startswith("ESME_"):
            params = jasmin_dlr(message_id=message_id, message_status=step.word)
        else:
            params = jasmin_dlr(
                message_id=message_id,
                message_status=step.word,
                id_smsc=str(rng.randint(1000, 99999)),
                subdate=sent_at,
                donedate=step.at,
                err=step.error or "000",
                text=f"Your code is {rng.randint(0, 999999):06d}",
            )

        def build(params: dict[str, str] = params) -> WebhookRequest:
            return jasmin_request(ctx.secret, params, provider=ctx.name)

        builds.append(build)
    return builds


def _futuresms(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    order_id = f"SDPS{sent_at:%y%m%d%H%M%S}{rng.randint(0, 9_999_999):07d}"
    reference = f"sim-order-{index:06d}"  # a client_order_id, 12-128 characters
    to = "+" + _phone(rng, "63")
    token = ctx.provider.config.url_token  # carried in the dlr_address FutureSMS calls
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        report = futuresms_report(
            order_id, step.word, client_order_id=reference, phone_number=to, reported_at=step.at
        )

        def build(report: dict[str, Any] = report) -> WebhookRequest:
            return futuresms_request(report, provider=ctx.name, token=token)

        builds.append(build)
    return builds


def _relayos(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    message_id = "msg_01" + "".join(rng.choice(_ULID_ALPHABET) for _ in range(24)).lower()
    to = f"+55119{rng.randint(60000000, 99999999)}"  # a São Paulo mobile
    wamid = f"wamid.HBgN{_hex(rng, 32).upper()}"
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        report = relayos_report(
            message_id, step.word, to=to, occurred_at=step.at, meta_message_id=wamid
        )

        def build(report: dict[str, Any] = report) -> WebhookRequest:
            return relayos_request(
                report, url_token=ctx.provider.config.url_token, provider=ctx.name
            )

        builds.append(build)
    return builds


def _smstools(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    messageid = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(30))
    receiver = _phone(rng, "32")
    token = ctx.provider.config.url_token
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        event = smstools_report(
            messageid,
            step.word,
            reference=f"order-{index}",
            receiver=receiver,
            content=f"Your code is {rng.randint(0, 999999):06d}",
            sent_at=sent_at,
            status_at=step.at,
            detail=step.error,
            detail_description=step.detail,
            webhook_id=f"wh_{_uuid(rng)}",
        )

        def build(event: dict[str, Any] = event) -> WebhookRequest:
            return smstools_request([event], token=token, provider=ctx.name)

        builds.append(build)
    return builds


def _txtly(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    sms_id = _uuid(rng)
    to = f"+614{rng.randint(0, 99_999_999):08d}"
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        event = txtly_event(
            sms_id, step.word, event_id=f"evt_{_hex(rng, 24)}", created_at=step.at, to=to
        )

        def build(event: dict[str, Any] = event) -> WebhookRequest:
            token = ctx.provider.config.url_token
            return txtly_request(ctx.secret, event, provider=ctx.name, url_token=token)

        builds.append(build)
    return builds


def _sendcomms(
    rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
) -> list[Build]:
    transaction_id = sendcomms_transaction_id(sent_at, _hex(rng, 12))
    to = "+" + _phone(rng, "233")
    carrier_id = "SM" + _hex(rng, 32)
    builds: list[Build] = []
    for step in _steps(rng, journey, sent_at):
        failed = step.word == "sms.failed"
        payload = sendcomms_event(
            step.word,
            transaction_id,
            to=to,
            timestamp=step.at,
            message_id=None if failed else carrier_id,
            error=step.detail if failed else None,
        )

        def build(payload: dict[str, Any] = payload) -> WebhookRequest:
            return sendcomms_request(ctx.secret, payload, provider=ctx.name)

        builds.append(build)
    return builds


MAKERS: dict[str, MessageMaker] = {
    "standard": _standard,
    "twilio": _twilio,
    "vonage": _vonage,
    "plivo": _plivo,
    "telnyx": _telnyx,
    "sinch": _sinch,
    "infobip": _infobip,
    "bird": _bird,
    "jasmin": _jasmin,
    "futuresms": _futuresms,
    "relayos": _relayos,
    "smstools": _smstools,
    "txtly": _txtly,
    "sendcomms": _sendcomms,
}

# A stand-in secret for a provider with insecure_no_signature and no secrets.
_PLACEHOLDER_SECRETS: dict[str, str | None] = {
    "standard": "whsec_" + base64.b64encode(b"simulate-placeholder-key").decode(),
    "twilio": "0" * 32,
    "vonage": "placeholder",
    "plivo": "placeholder-auth-token",
    "sinch": "simulate:placeholder",
    "infobip": None,
    "bird": "placeholder",
    "jasmin": None,
    "telnyx": None,
    "futuresms": None,  # signs nothing: the url_token, if set, is the configured one
    "relayos": None,  # signs nothing: its url_token goes in the query
    "smstools": None,  # signs nothing: its url_token goes in the path
    "txtly": None,  # no secrets: its reports go unsigned, with the url_token if one is set
    "sendcomms": "simulate-placeholder-secret",
}


# --------------------------------------------------------------------------- the stream


@dataclass(frozen=True)
class Item:
    """One request of the stream: which message, and how to build it afresh."""

    message: int
    build: Build


@dataclass
class Expected:
    provider_message_id: str
    state: MessageState


def expectations(
    ctx: Context, messages: Sequence[Message], received_at: datetime
) -> list[Expected]:
    """Each message's expected final state: its reports parsed by the configured
    provider and merged with the one merge rule (each event id once)."""
    result = []
    for message in messages:
        reports: list[Report] = []
        for build in message.builds:
            inbound = InboundRequest.captured(build(), ctx.public_base_url, received_at)
            reports += ctx.provider.parse(inbound)
        ids = {report.provider_message_id for report in reports}
        if len(ids) != 1:
            raise ReceiverError(f"simulated message {message.index} parsed as {sorted(ids)}")
        state = MessageState()
        seen: set[str] = set()
        for report in reports:
            if report.event_id not in seen:
                seen.add(report.event_id)
                state = merge(state, report).state
        result.append(Expected(ids.pop(), state))
    return result


def generate(
    ctx: Context, *, messages: int, duplicates: float, shuffle: bool, seed: int, start: datetime
) -> tuple[list[Message], list[Item]]:
    """The messages and the stream of requests to post (duplicates and order applied)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    maker = MAKERS[ctx.provider.kind]
    made: list[Message] = []
    timed: list[tuple[datetime, int, int, Build]] = []
    sent_at = start
    for index, journey in enumerate(_plan(rng, JOURNEYS[ctx.provider.kind], messages)):
        sent_at += timedelta(milliseconds=rng.randint(50, 2000))
        message = Message(index, maker(rng, ctx, index, journey, sent_at))
        made.append(message)
        for order, build in enumerate(message.builds):
            timed.append((sent_at + timedelta(seconds=order), index, order, build))
    # Natural order: as the provider would send them, by message then report.
    timed.sort(key=lambda entry: (entry[0], entry[1], entry[2]))
    stream: list[Item] = []
    for _, index, _, build in timed:
        stream.append(Item(index, build))
        if rng.random() < duplicates:
            stream.append(Item(index, build))  # a redelivery (freshly signed, same report)
    if shuffle:
        rng.shuffle(stream)
    return made, stream


# --------------------------------------------------------------------------- HTTP


@dataclass
class PostResult:
    codes: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    counted: int = 0
    """Answers that carried the contract's counts (Jasmin's ``ACK/Jasmin`` does not)."""
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.codes.items() if not code.startswith("2"))


async def _post_one(client: httpx.AsyncClient, item: Item, result: PostResult) -> None:
    for attempt in range(RETRIES + 1):
        request = item.build()  # signed now, so time-limited signatures are fresh
        try:
            answer = await client.request(
                request.method, request.path, content=request.body, headers=request.headers
            )
        except httpx.TransportError as exc:
            if attempt < RETRIES:
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            result.codes["connection-failed"] += 1
            result.problems.append(f"{request.method} {request.path.split('?')[0]}: {exc!r}")
            return
        result.codes[str(answer.status_code)] += 1
        if answer.is_success:
            if answer.headers.get("content-type", "").startswith("application/json"):
                counts = answer.json()
                result.counted += 1
                for kind in ("applied", "duplicates", "superseded"):
                    result.outcomes[kind] += int(counts.get(kind, 0))
        else:
            detail = answer.text.strip().replace("\n", " ")[:200]
            result.problems.append(f"message #{item.message}: HTTP {answer.status_code} {detail}")
        return


Job = Callable[[], Awaitable[None]]


async def _run_pool(jobs: Sequence[Job], concurrency: int) -> None:
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            await job()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(jobs))))))


async def post_stream(base_url: str, stream: Sequence[Item], concurrency: int) -> PostResult:
    result = PostResult()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        await _run_pool(
            [functools.partial(_post_one, client, item, result) for item in stream], concurrency
        )
    return result


@dataclass
class Verdict:
    got: str | None = None
    error_code: str | None = None
    problem: str | None = None


async def verify(
    base_url: str, token: str, provider: str, expected: Sequence[Expected], concurrency: int
) -> list[Verdict]:
    """Every message's stored status, looked up by provider message id."""
    verdicts = [Verdict() for _ in expected]
    headers = {"authorization": f"Bearer {token}"}

    async def look(client: httpx.AsyncClient, index: int) -> None:
        params = {"provider": provider, "provider_message_id": expected[index].provider_message_id}
        try:
            answer = await client.get("/v1/messages", params=params)
        except httpx.TransportError as exc:
            verdicts[index].problem = f"lookup failed: {exc!r}"
            return
        if not answer.is_success:
            detail = answer.text.strip().replace("\n", " ")[:200]
            verdicts[index].problem = f"lookup answered HTTP {answer.status_code} {detail}"
            return
        items = answer.json().get("items", [])
        if not items:
            verdicts[index].problem = "not found"
            return
        verdicts[index].got = items[0].get("status")
        verdicts[index].error_code = items[0].get("error_code")

    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        await _run_pool(
            [functools.partial(look, client, i) for i in range(len(expected))], concurrency
        )
    return verdicts


# --------------------------------------------------------------------------- command


def _load_telnyx_key(path: str, ctx_provider: Provider) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--telnyx-private-key {path}: {exc.strerror}") from None
    key: Any
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            raw = base64.b64decode(data.strip(), validate=True)
            key = Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(
            f"--telnyx-private-key {path}: not an Ed25519 private key "
            "(PEM, or the base64 of its 32 raw bytes)"
        )
    configured = getattr(ctx_provider.config, "public_key", None) or []
    if ctx_provider.verifies and telnyx_ed25519.public_key_text(key) not in configured:
        raise UsageError(
            f"--telnyx-private-key {path}: its public key is not in "
            f"providers.{ctx_provider.name}.public_key, so the receiver would refuse the stream"
        )
    return key


def _context(config: Config, args: argparse.Namespace) -> Context:
    provider = config.providers.get(args.provider)
    if provider is None:
        known = ", ".join(sorted(config.providers)) or "none"
        raise ConfigError(
            str(config.source), f"providers.{args.provider}", f"is not configured (known: {known})"
        )
    if provider.kind not in MAKERS:
        raise UsageError(f"provider type {provider.kind!r} cannot be simulated")
    public = config.settings.public_base_url
    ctx = Context(
        provider=provider,
        secret=provider.config.secrets[0]
        if provider.config.secrets
        else _PLACEHOLDER_SECRETS.get(provider.kind),
        public_base_url=(str(public) if public is not None else args.url).rstrip("/"),
    )
    if provider.kind == "telnyx":
        if args.telnyx_private_key is None:
            raise UsageError(
                f"provider {provider.name!r} is telnyx, which signs with Telnyx's private key "
                "that receiver does not hold: pass --telnyx-private-key FILE (an Ed25519 key "
                "whose public key is configured)"
            )
        ctx.telnyx_key = _load_telnyx_key(args.telnyx_private_key, provider)
    return ctx


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


_START_YEARS = range(2000, 2099)
"""``--start`` years: SMPP receipts and Vonage's ``scts`` write two-digit years, and a
stream runs on for days after its start."""


def _start(text: str) -> datetime:
    try:
        moment = parse_iso(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None
    if moment.year not in _START_YEARS:
        first, last = _START_YEARS[0], _START_YEARS[-1]
        raise argparse.ArgumentTypeError(
            f"{text!r} must be in the years {first}-{last} (SMPP receipts write two-digit years)"
        )
    return moment


def _describe(state: MessageState) -> str:
    status = state.status.value if state.status else "-"
    return f"{status} ({state.error_code})" if state.error_code else status


def _counts(posted: PostResult) -> str:
    """The answers' outcome counts (applied vs superseded depends on arrival order)."""
    if not posted.counted:
        return "; reports not counted (the provider's answers carry no counts)"
    outcomes = posted.outcomes
    return (
        f"; outcomes applied {outcomes['applied']}, superseded {outcomes['superseded']},"
        f" duplicates {outcomes['duplicates']}"
    )


def run(args: argparse.Namespace) -> int:
    path, _ = resolve_path(args.config)
    config = load(path)
    ctx = _context(config, args)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    start = args.start or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    messages, stream = generate(
        ctx,
        messages=args.messages,
        duplicates=args.duplicates,
        shuffle=args.shuffle,
        seed=seed,
        start=start,
    )
    expected = expectations(ctx, messages, start)
    base_url = args.url.rstrip("/")
    print(
        f"simulate: provider {ctx.name} ({ctx.provider.kind}), seed {seed}, "
        f"{len(messages)} messages, {len(stream)} requests "
        f"({len(stream) - sum(len(m.builds) for m in messages)} duplicates)"
        + (", shuffled" if args.shuffle else ""),
        flush=True,
    )
    posted = asyncio.run(post_stream(base_url, stream, args.concurrency))
    verdicts: list[Verdict] | None = None
    if args.verify_token:
        verdicts = asyncio.run(
            verify(base_url, args.verify_token, ctx.name, expected, args.concurrency)
        )
    mismatches = 0
    list_all = len(expected) <= LIST_LIMIT
    for index, want in enumerate(expected):
        line = f"{want.provider_message_id}\texpected {_describe(want.state)}"
        bad = False
        if verdicts is not None:
            verdict = verdicts[index]
            wanted_status = want.state.status.value if want.state.status else None
            if verdict.problem is not None:
                bad, line = True, f"{line}\tMISMATCH: {verdict.problem}"
            elif verdict.got != wanted_status or verdict.error_code != want.state.error_code:
                got = f"{verdict.got or '-'}" + (
                    f" ({verdict.error_code})" if verdict.error_code else ""
                )
                bad, line = True, f"{line}\tMISMATCH: stored {got}"
            else:
                line += "\tok"
        mismatches += bad
        if list_all or bad:
            print(line)
    for problem in posted.problems[:20]:
        print(f"error: {problem}")
    if len(posted.problems) > 20:
        print(f"error: ... and {len(posted.problems) - 20} more")
    finals = Counter(_describe(MessageState(status=e.state.status)) for e in expected)
    print(
        "summary: answers "
        + ", ".join(f"{code} x{n}" for code, n in sorted(posted.codes.items()))
        + _counts(posted)
        + "; expected "
        + ", ".join(f"{status} {n}" for status, n in sorted(finals.items()))
    )
    if verdicts is not None:
        matched = len(expected) - mismatches
        print(f"verify: {matched} of {len(expected)} messages match, {mismatches} mismatches")
    return 1 if posted.failed or mismatches else 0


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register this module's subcommands on the CLI's subparsers."""
    parser = commands.add_parser(
        "simulate",
        help="post a realistic, signed report stream for one configured provider",
        description=(
            "Post a realistic, correctly signed stream of delivery reports for the "
            "configured provider NAME, print each message's expected final status and, "
            "with --verify-token, check it against the staff API (exit 1 on a mismatch "
            "or a non-2xx answer)."
        ),
    )
    parser.add_argument("--url", required=True, help="the receiver's base URL to post to")
    parser.add_argument("--provider", required=True, metavar="NAME", help="a configured provider")
    parser.add_argument("--messages", required=True, type=_positive, metavar="N")
    parser.add_argument(
        "--duplicates",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="fraction of reports sent twice (0-1, default 0)",
    )
    parser.add_argument(
        "--shuffle", action="store_true", help="send the whole stream in a random order"
    )
    parser.add_argument(
        "--seed", type=int, help="makes the stream reproducible (default: random, printed)"
    )
    parser.add_argument(
        "--start",
        type=_start,
        help="ISO 8601 time of the first message's provider timestamps (default: today 00:00 UTC)",
    )
    parser.add_argument(
        "--verify-token", metavar="TOKEN", help="staff token: check every message's status"
    )
    parser.add_argument("--concurrency", type=_positive, default=8, metavar="C")
    parser.add_argument(
        "--telnyx-private-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) to sign a telnyx stream with",
    )
    parser.add_argument("--config", help=config_help)
    parser.set_defaults(run=run)


__all__ = ["JOURNEYS", "MAKERS", "add_commands", "expectations", "generate", "run"]
