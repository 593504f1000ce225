"""A message as a staff member's role may see it, in the API's JSON model
(``GET /v1/messages``, the change feed) and as CSV (``GET /v1/messages.csv`` and the
console's search export)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

from starlette.responses import Response, StreamingResponse

from receiver.core.phone import FULL_NUMBER_ROLES, mask_phone, mask_text
from receiver.records import MessageFilter, MessageRecord, Position
from receiver.services.schemas import MessageOut
from receiver.store.base import Store, to_text


def message_json(record: MessageRecord, role: str) -> MessageOut:
    """``record`` as ``role`` may see it: a viewer gets the number masked as in the
    console (README "HTTP API")."""
    message = MessageOut.model_validate(record, from_attributes=True)
    if role not in FULL_NUMBER_ROLES:
        masked = {"error_message": mask_text(message.error_message, role)}
        if message.to is not None:
            masked["to"] = mask_phone(message.to, role)
        message = message.model_copy(update=masked)
    return message


CSV_COLUMNS = (
    "id",
    "provider",
    "provider_message_id",
    "to",
    "country",
    "network",
    "status",
    "final",
    "error_code",
    "error_message",
    "client_reference",
    "created_at",
    "updated_at",
    "status_changed_at",
    "report_count",
)
CSV_PAGE = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell, safe to open in a spreadsheet: text that would start a formula
    (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading ``'`` (OWASP, "CSV
    Injection"), so ``+639171234567`` reads ``'+639171234567``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return to_text(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


async def csv_response(store: Store, where: MessageFilter, role: str) -> Response:
    """Every message ``where`` finds, newest first, as CSV streamed page by page (the
    numbers as ``role`` may see them, as in JSON). The first page is read before the
    answer starts, so a store failure is still a problem answer, not a cut-off file."""
    first = await store.find_messages(where, CSV_PAGE, None)

    async def lines() -> AsyncIterator[str]:
        yield _csv_line(list(CSV_COLUMNS))
        page = first
        while page:
            for record in page:
                message: MessageOut = message_json(record, role)
                yield _csv_line([csv_cell(getattr(message, name)) for name in CSV_COLUMNS])
            if len(page) < CSV_PAGE:
                return
            last = page[-1]
            after = Position(created_at=to_text(last.created_at), id=last.id)
            page = await store.find_messages(where, CSV_PAGE, after)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="messages.csv"'},
    )
