"""Starting the service's own processes beside a test server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``receiver worker --config CONFIG``, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "receiver", "worker", "--config", str(config)],
            stdout=out,
            stderr=out,
        )
