"""Rows into records: what every backend's rows (``sqlite3.Row``, ``asyncpg.Record``)
become when the store hands them out."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

import aiosqlite

from receiver.core.status import Status
from receiver.records import (
    ChangeRecord,
    MessageRecord,
    RawRequest,
    StaffMember,
)
from receiver.store.base import from_text


def message_record(row: aiosqlite.Row | Snapshot) -> MessageRecord:
    return MessageRecord(
        id=row["id"],
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
        to=row["to_number"],
        status=Status(row["status"]) if row["status"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        client_reference=row["client_reference"],
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        status_changed_at=from_text(row["status_changed_at"]) if row["status_changed_at"] else None,
        report_count=row["report_count"],
        client_id=row["client_id"],
        sender=row["sender"],
        segments=row["segments"],
        country=row["country"],
        network=row["network"],
    )


class Snapshot(dict[str, Any]):
    """A message row stored as JSON with a change; a column added since reads None."""

    def __missing__(self, key: str) -> None:
        return None


def change_record(row: sqlite3.Row | aiosqlite.Row) -> ChangeRecord:
    return ChangeRecord(
        cursor=row["id"],
        change_id=row["change_id"],
        message_id=row["message_id"],
        seq=row["seq"],
        previous_status=Status(row["previous_status"]) if row["previous_status"] else None,
        status=Status(row["status"]) if row["status"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        changed_at=from_text(row["changed_at"]),
        cause_source=row["cause_source"],
        cause_event_id=row["cause_event_id"],
        message=message_record(Snapshot(json.loads(row["message"]))),
    )


def optional_time(text: str | None) -> datetime | None:
    return from_text(text) if text else None


def raw_request(row: aiosqlite.Row) -> RawRequest:
    return RawRequest(
        method=row["method"],
        path=row["path"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
        received_at=from_text(row["received_at"]),
        id=row["id"],
    )


def staff_member(row: aiosqlite.Row) -> StaffMember:
    return StaffMember(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        created_at=from_text(row["created_at"]),
        revoked_at=from_text(row["revoked_at"]) if row["revoked_at"] else None,
        sessions_after=(
            from_text(row["console_sessions_after"]) if row["console_sessions_after"] else None
        ),
    )
