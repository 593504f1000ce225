"""Reports as a provider module would parse them, for the store's tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from receiver.core.reports import Report
from receiver.core.status import parse_status


def status_report(
    event_id: str, message_id: str, word: str, occurred_at: datetime, **fields: Any
) -> Report:
    """A report saying ``word`` (a provider's own status word) of the message the
    provider calls ``message_id``; ``fields`` are the rest of ``Report``'s."""
    return Report(
        event_id=event_id,
        provider_message_id=message_id,
        status=parse_status(word),
        provider_status=word,
        occurred_at=occurred_at,
        **fields,
    )
