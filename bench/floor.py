"""``receiver serve`` with a store that answers every ingest at once and stores
nothing: the floor of the request path (uvicorn with the receiver's edge, the
middleware, verification, parsing, metrics, the access line and the answer), for the
``floor`` row of ``bench/ingest.py``. An experiment, never a server: its 200s are not
on disk, so that row is left out of the durability check.

Usage: ``python bench/floor.py serve --config receiver.toml ...`` (``receiver``'s
arguments).
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.cli import main
from receiver.core.reports import Outcome, Report
from receiver.records import RawRequest
from receiver.store.sql import SqlStore


async def _answer_at_once(
    self: SqlStore, provider: str, raw: RawRequest, reports: Sequence[Report]
) -> Outcome:
    """Every report applied, nothing written."""
    return Outcome(received=len(reports), applied=len(reports))


SqlStore.ingest = _answer_at_once  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main())
