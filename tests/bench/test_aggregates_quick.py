"""bench/aggregates.py runs in its short mode, so it cannot rot. Nothing is timed: the
test checks that both variants ran over the same reports and a ratio came out."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_compares_with_and_without_the_aggregates(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "aggregates.py"), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "| with the delivery aggregates |" in result.stdout
    assert "| without (triggers dropped) |" in result.stdout
    assert re.search(r"^RATIO \d+\.\d\d ", result.stdout, re.M), output
