"""Reprocessing a stored event, the whole operation behind both the admin route
``POST /v1/events/{provider}/{event_id}/reprocess`` (``receiver.http.admin``) and the
console's "Reprocess" button (``receiver.console.message``).

Reprocess re-runs the stored raw request that carried an event through the
provider's *current* parser, after a parser fix. The signature is not checked again:
it was verified when the request was received, and a timestamped scheme would refuse
it now. Each report the parser now finds is applied in one transaction: one new to
the processed set goes through the ingest path; a processed one that now reads
differently is rewritten (``reprocessed_at`` in the timeline) and its message is
recomputed from all of its events, so the record still depends only on the set of
reports.
"""

from __future__ import annotations

import logging

from receiver.errors import NotFound, PayloadInvalid, Unprocessable
from receiver.providers.base import InboundRequest
from receiver.services.schemas import ReprocessResult
from receiver.services.state import AppState

log = logging.getLogger("receiver.admin")


async def reprocess_stored_event(
    state: AppState, name: str, event_id: str, base_url: str
) -> ReprocessResult:
    """Re-parse the stored request that carried event ``event_id`` of provider ``name``
    and apply what it now says; committed when this returns.

    ``base_url`` stands in for ``public_base_url`` when none is configured (the URL the
    parser sees). Raises NotFound (no such provider or event), Gone
    (``RAW_REQUEST_DELETED``: retention or erasure deleted the stored request) and
    Unprocessable (``STORED_REQUEST_INVALID``: the current parser rejects it).
    """
    provider = state.config.providers.get(name)
    if provider is None:
        raise NotFound(f"no provider named {name!r} is configured", code="PROVIDER_UNKNOWN")
    raw = await state.store.raw_request_for_event(name, event_id)
    if raw is None:
        raise NotFound(f"provider {name!r} has no stored event {event_id!r}")
    public_base_url = str(state.config.settings.public_base_url or base_url)
    try:
        reports = provider.parse(InboundRequest.captured(raw, public_base_url, raw.received_at))
    except PayloadInvalid as exc:
        raise Unprocessable(
            f"the current parser rejects the stored request: {exc.detail}",
            code="STORED_REQUEST_INVALID",
            field=exc.field,
        ) from exc
    done = await state.store.reprocess(name, raw, reports)
    log.info(
        "reprocessed a stored request: %d reports, %d applied, %d superseded,"
        " %d corrected, %d unchanged",
        done.reports,
        done.applied,
        done.superseded,
        done.corrected,
        done.unchanged,
        extra={"provider": name},
    )
    return ReprocessResult(
        event_id=event_id,
        reports=done.reports,
        applied=done.applied,
        superseded=done.superseded,
        corrected=done.corrected,
        unchanged=done.unchanged,
        missing=event_id not in {report.event_id for report in reports},
    )
