"""bench/sends.py runs end to end in its short mode, so it cannot rot.

Nothing here is timed: the test only checks that every row was measured.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sends.py"
ROW = re.compile(r"^\| (\d+) \| ([\d,]+) \| ([\d,]+) \| [\d.]+ \|$", re.M)


def test_quick_run_measures_both_paths_alone_and_under_load(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = ROW.findall(result.stdout)
    assert [in_flight for in_flight, *_ in rows] == ["1", "32"], result.stdout
