"""Fake provider status APIs for the reconciler (README "Missing reports"): one loopback
server per provider type that can look a message up, answering with the provider's
documented JSON (the pages cited in ``docs/providers/``).

A test sets what the provider knows (``know``: the message's outcome in our terms) and
reads what was asked (``lookups_of``). ``on_lookup`` scripts faults (``Fail``,
``Throttle``, ``Stall``, ``Drop``) as for the send fakes. ``most_at_once`` counts the
lookups of one message that were in flight together (two processes must never make it
more than 1). ``provider_table`` gives the ``[providers.NAME]`` keys that point the
type's lookups here.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

from receiver.core.signatures.standard_webhooks import new_whsec
from receiver.testing.fake_server import (
    Answer,
    Drop,
    Fail,
    FakeRequest,
    FakeServer,
    Reject,
    Stall,
    Throttle,
)

LOOKUP_TYPES = ("standard", "twilio", "telnyx", "plivo", "infobip", "sinch", "vonage", "bird")
Outcome = Literal["delivered", "undelivered", "pending"]

ACCOUNT_SID = "AC" + "0" * 32
AUTH_ID = "MAXXXXXXXXXXXXXXXXXX"
SERVICE_PLAN = "plan1234"


@dataclass(frozen=True)
class Truth:
    """What the provider knows about one message."""

    outcome: Outcome
    to: str
    at: datetime


# Per type: the provider's words for each outcome, and the error code of "undelivered".
WORDS: dict[str, dict[Outcome, str]] = {
    "standard": {"delivered": "delivered", "undelivered": "undelivered", "pending": "sent"},
    "twilio": {"delivered": "delivered", "undelivered": "undelivered", "pending": "sent"},
    "telnyx": {"delivered": "delivered", "undelivered": "delivery_failed", "pending": "sent"},
    "plivo": {"delivered": "delivered", "undelivered": "undelivered", "pending": "sent"},
    "infobip": {
        "delivered": "DELIVERED_TO_HANDSET",
        "undelivered": "UNDELIVERABLE_NOT_DELIVERED",
        "pending": "PENDING_ENROUTE",
    },
    "sinch": {"delivered": "Delivered", "undelivered": "Failed", "pending": "Dispatched"},
    "vonage": {"delivered": "delivered", "undelivered": "failed", "pending": "accepted"},
    "bird": {"delivered": "delivered", "undelivered": "delivery_failed", "pending": "sent"},
}
ERROR_CODES: dict[str, str] = {
    "standard": "ABSENT_SUBSCRIBER",
    "twilio": "30003",
    "telnyx": "40008",
    "plivo": "20",
    "infobip": "1",
    "sinch": "404",
    "vonage": "6",
    "bird": "1",
}


def provider_message_id(kind: str, to: str) -> str:
    """A fresh message id in the type's format (Sinch's is ``batch:+E164``)."""
    token = secrets.token_hex(16)
    if kind == "twilio":
        return "SM" + token
    if kind in ("telnyx", "plivo"):
        return f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}"
    if kind == "sinch":
        return f"01{token[:24].upper()}:{to}"
    return token


class FakeStatusApi(FakeServer):
    """One provider type's status API on loopback."""

    def __init__(self, kind: str, api_key: str = "fake-status-key", port: int = 0) -> None:
        super().__init__(port)
        self.kind = kind
        self.api_key = api_key
        self._truth: dict[str, Truth] = {}
        self._lookups: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self.most_at_once = 0

    def provider_table(self) -> dict[str, Any]:
        """The ``[providers.NAME]`` keys (besides report timings) for this fake."""
        base = {"api_base_url": self.base_url}
        tables: dict[str, dict[str, Any]] = {
            "standard": {"secrets": [new_whsec()], "api_key": self.api_key},
            "twilio": {"secrets": ["t" * 32], "account_sid": ACCOUNT_SID},
            "telnyx": {"insecure_no_signature": True, "api_key": self.api_key},
            "plivo": {"secrets": ["p" * 24], "auth_id": AUTH_ID},
            "infobip": {"secrets": ["user:password"], "api_key": self.api_key},
            "sinch": {
                "auth": "hmac",
                "secrets": ["sinch-secret"],
                "service_plan_id": SERVICE_PLAN,
                "api_key": self.api_key,
            },
            "vonage": {"secrets": ["vonage-secret"], "api_key": "abcd1234", "api_secret": "s"},
            "bird": {"secrets": ["bird-signing-key"], "api_key": self.api_key},
        }
        return {"type": self.kind, **tables[self.kind], **base}

    def know(self, message_id: str, outcome: Outcome, to: str) -> None:
        """The provider now knows ``message_id`` (its id) reached ``outcome``."""
        with self.lock:
            self._truth[message_id] = Truth(outcome, to, datetime.now(UTC).replace(microsecond=0))

    def lookups_of(self, message_id: str) -> int:
        with self.lock:
            return self._lookups[message_id]

    @property
    def lookup_calls(self) -> int:
        with self.lock:
            return sum(self._lookups.values())

    async def answer(self, request: FakeRequest) -> Answer | None:
        message_id = self._message_id(request)
        with self.lock:
            behaviour = self.next_behaviour("lookup")
            self._lookups[message_id] += 1
            self._in_flight[message_id] += 1
            self.most_at_once = max(self.most_at_once, self._in_flight[message_id])
            truth = self._truth.get(message_id)
        try:
            if isinstance(behaviour, Throttle):
                return 429, {"retry-after": behaviour.retry_after}, {"error": "too many"}
            if isinstance(behaviour, Fail | Reject):
                return behaviour.status, {}, {"error": "lookup fault"}
            if isinstance(behaviour, Drop):
                return None
            if isinstance(behaviour, Stall):
                await self.stall(behaviour)
            if truth is None:
                return 404, {}, {"error": "not found"}
            return 200, {}, self._render(message_id, truth)
        finally:
            with self.lock:
                self._in_flight[message_id] -= 1

    def _message_id(self, request: FakeRequest) -> str:
        path = request.path
        if self.kind == "infobip":
            return request.param("messageId") or ""
        if self.kind == "vonage":
            return request.param("id") or ""
        if self.kind == "twilio":
            return path.rsplit("/", 1)[-1].removesuffix(".json")
        if self.kind == "plivo":
            return path.rstrip("/").rsplit("/", 1)[-1]
        if self.kind == "sinch":
            parts = path.split("/")  # /xms/v1/{plan}/batches/{batch}/delivery_report/{msisdn}
            return f"{parts[5]}:+{parts[7]}"
        return path.rsplit("/", 1)[-1]

    def _render(self, message_id: str, truth: Truth) -> Any:
        """The provider's documented answer for a message it knows."""
        word = WORDS[self.kind][truth.outcome]
        failed = truth.outcome == "undelivered"
        code = ERROR_CODES[self.kind] if failed else None
        iso = truth.at.isoformat().replace("+00:00", "Z")
        if self.kind == "standard":
            return {
                "id": message_id,
                "reference": None,
                "status": word,
                "error_code": code,
                "error_message": "absent subscriber" if failed else None,
                "occurred_at": iso,
            }
        if self.kind == "twilio":
            return {
                "sid": message_id,
                "account_sid": ACCOUNT_SID,
                "to": truth.to,
                "status": word,
                "error_code": int(code) if code else None,
                "error_message": None,
                "date_updated": format_datetime(truth.at, usegmt=True),
            }
        if self.kind == "telnyx":
            errors = [{"code": code, "title": "Delivery failed", "detail": "unreachable"}]
            return {
                "data": {
                    "record_type": "message",
                    "id": message_id,
                    "to": [{"phone_number": truth.to, "status": word, "carrier": "X"}],
                    "errors": errors if failed else [],
                    "completed_at": iso,
                }
            }
        if self.kind == "plivo":
            return {
                "api_id": "a1",
                "message_uuid": message_id,
                "message_state": word,
                "error_code": code or "000",
                "to_number": truth.to.removeprefix("+"),
                "message_time": truth.at.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            }
        if self.kind == "infobip":
            groups = {"delivered": (3, "DELIVERED"), "undelivered": (2, "UNDELIVERABLE")}
            group_id, group = groups.get(truth.outcome, (1, "PENDING"))
            error = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"}
            if failed:
                error = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 1,
                         "name": "EC_UNKNOWN_SUBSCRIBER", "permanent": True}  # fmt: skip
            done = truth.at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            return {
                "results": [
                    {
                        "messageId": message_id,
                        "to": truth.to.removeprefix("+"),
                        "sentAt": done,
                        "doneAt": done,
                        "status": {"groupId": group_id, "groupName": group, "id": 5, "name": word},
                        "error": error,
                    }
                ]
            }
        if self.kind == "sinch":
            batch_id, _, recipient = message_id.rpartition(":")
            codes = {"delivered": 0, "undelivered": 404, "pending": 401}
            return {
                "type": "recipient_delivery_report_sms",
                "batch_id": batch_id,
                "recipient": recipient.removeprefix("+"),
                "code": codes[truth.outcome],
                "status": word,
                "at": iso,
            }
        if self.kind == "vonage":
            record = {
                "message_id": message_id,
                "status": word,
                "error_code": code or "0",
                "error_code_description": "Anti-Spam Rejection" if failed else "Delivered",
                "to": truth.to.removeprefix("+"),
                "date_finalized": iso,
            }
            return {"records": [record], "request_status": "SUCCESS"}
        return {  # bird
            "id": message_id,
            "recipients": {
                "totalCount": 1,
                "items": [
                    {
                        "recipient": int(truth.to.removeprefix("+")),
                        "status": word,
                        "statusDatetime": iso,
                        "statusReason": "unknown subscriber" if failed else None,
                        "statusErrorCode": int(code) if code else None,
                    }
                ],
            },
        }


__all__ = [
    "ERROR_CODES",
    "LOOKUP_TYPES",
    "WORDS",
    "FakeStatusApi",
    "provider_message_id",
]
