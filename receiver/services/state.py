"""What every route of the API and the console needs, kept on ``app.state.receiver``."""

from __future__ import annotations

from dataclasses import dataclass, field

from itsdangerous import URLSafeSerializer

from receiver.config import Config
from receiver.feed.signal import ChangeSignal
from receiver.services.admission import Admission
from receiver.services.metrics import Metrics
from receiver.store.base import Store


@dataclass(frozen=True)
class AppState:
    config: Config
    store: Store
    metrics: Metrics
    cursors: URLSafeSerializer
    admission: Admission
    change_signal: ChangeSignal = field(default_factory=ChangeSignal)
    """Notified when this process commits changes (the SSE streams wait on it)."""
