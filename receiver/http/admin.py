"""Admin routes: ``POST /v1/events/{provider}/{event_id}/reprocess``.

The operation itself is ``receiver.services.reprocess.reprocess_stored_event``, which
the console's "Reprocess" button calls too. A 200 means it is on disk.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from receiver.http.staff import authenticate
from receiver.services.reprocess import reprocess_stored_event
from receiver.services.state import AppState


async def reprocess_event(request: Request) -> Response:
    """Re-parse the stored request of one event and apply what it now says."""
    await authenticate(request, "admin")
    state: AppState = request.app.state.receiver
    result = await reprocess_stored_event(
        state,
        request.path_params["provider"],
        request.path_params["event_id"],
        str(request.base_url),
    )
    return Response(result.model_dump_json(), media_type="application/json")
