"""Pydantic models of every JSON answer; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from receiver.core.segments import Encoding
from receiver.core.status import Status


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class IngestResult(_Out):
    """The 200 answer to a webhook once its reports are committed to disk."""

    received: int = Field(description="Reports in the request.")
    applied: int = Field(description="New reports that changed their message.")
    duplicates: int = Field(description="Reports whose event id was already processed.")
    superseded: int = Field(description="New reports, kept in the timeline, status unchanged.")


class MessageOut(_Out):
    id: str
    provider: str
    provider_message_id: str | None
    to: str | None = Field(
        description="The recipient in E.164; for a `viewer` masked as in the console "
        "(`+63******4567`: country code and last four digits)."
    )
    status: Status | None = Field(description="None until a report maps to a known status.")
    final: bool
    error_code: str | None
    error_message: str | None
    client_reference: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None = Field(
        description="When the report that set the status occurred."
    )
    report_count: int
    sender: str | None = Field(description="The sender id or number it is sent from.")
    segments: int | None = Field(description="SMS segments, for a message sent through us.")
    country: str | None = Field(
        description="ISO 3166-1 alpha-2 region of `to` (libphonenumber); null without a number."
    )
    network: str | None = Field(
        description="The mobile network as `MCC-MNC` (`515-02`) when a provider's report"
        " named it; null otherwise (never guessed from the number: numbers are ported)."
    )


class SentMessage(MessageOut):
    """The 202 answer to ``POST /v1/messages``: the queued message."""

    encoding: Encoding | None = Field(
        description="How the body is encoded for the SMS network; null for a template."
    )


class MessageList(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class EventOut(_Out):
    event_id: str
    source: Literal["webhook", "outbound", "lookup", "receiver"] = Field(
        description="`webhook`: a provider's report; `outbound`: a step of our own send;"
        " `lookup`: the provider's answer when we asked its API about an overdue message;"
        " `receiver`: our own verdict (`unknown`, `NO_FINAL_REPORT`) when no final report"
        " came."
    )
    status: Status | None = Field(description="None when the provider's word maps to none.")
    provider_status: str
    error_code: str | None
    error_message: str | None
    occurred_at: datetime
    received_at: datetime
    outcome: Literal["applied", "superseded"]
    deliveries: int = Field(description="How many times the provider sent this report.")
    reprocessed_at: datetime | None = Field(
        default=None,
        description="When an admin reprocess last rewrote this report (the parser had changed).",
    )


class EventList(BaseModel):
    items: list[EventOut]


class ReprocessResult(BaseModel):
    """What re-running an event's stored request through the current parser did."""

    event_id: str = Field(description="The event whose stored request was reprocessed.")
    reports: int = Field(description="Reports the current parser finds in that request.")
    applied: int = Field(description="New to the processed set; changed their message.")
    superseded: int = Field(description="New to the processed set; the status stood.")
    corrected: int = Field(
        description="Already processed but now read differently: rewritten, and their "
        "message recomputed from all of its events."
    )
    unchanged: int = Field(description="Already processed and read the same.")
    missing: bool = Field(
        description="True if the current parser no longer finds event_id itself in the "
        "request (its stored event is left as it was)."
    )


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, e.g. SIGNATURE_INVALID.")
    request_id: str
    field: str | None = Field(default=None, description="The invalid field or header.")
    existing_message_id: str | None = Field(
        default=None,
        description="For a reused client_reference: the message it already names.",
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class ChangeCause(BaseModel):
    source: Literal["webhook", "outbound", "reprocess", "lookup", "receiver"] = Field(
        description="`webhook`: a provider's report; `outbound`: a step of our own send;"
        " `reprocess`: an admin re-ran a stored request; `lookup`, `receiver`: the service"
        " asked the provider, or decided itself."
    )
    event_id: str | None = Field(description="The timeline event that made the change.")


class ChangeOut(BaseModel):
    """One change of a message's status or error, with the message as it left it."""

    change_id: str = Field(description="Unique; the `webhook-id` of every delivery of it.")
    seq: int = Field(description="1, 2, 3, ... per message, without gaps.")
    previous_status: Status | None
    status: Status | None
    changed_at: datetime
    cause: ChangeCause
    message: MessageOut


class ChangeList(BaseModel):
    items: list[ChangeOut] = Field(description="In commit order.")
    next: str = Field(description="Pass as `after` for the changes that follow.")


class ChangeNotification(BaseModel):
    """The body POSTed to a subscriber (Standard Webhooks signed)."""

    type: Literal["message.status_changed"]
    data: ChangeOut
