"""bench/reconcile.py runs end to end in its short mode, so it cannot rot.

Nothing here is timed: the benchmark reports figures; the test checks that the overdue
queries use their index, that one pass claimed every overdue message once, and that
every provider type with a lookup was measured.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from receiver.testing.fake_status import LOOKUP_TYPES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "reconcile.py"
PASS_ROW = re.compile(r"^\| 20,000 \| ([\d,]+) \| (\d+) \| ([\d,]+) \| wall \|", re.M)
RATE_ROW = re.compile(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \|$", re.M)


def test_quick_run_claims_every_overdue_message_through_the_index(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--workdir", str(tmp_path / "store")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "PLAN OK" in result.stdout, output
    assert "USING INDEX messages_awaiting_report" in result.stdout
    claimed = PASS_ROW.search(result.stdout)
    assert claimed is not None, output
    assert claimed[1] == "500"
    measured = {row[0] for row in RATE_ROW.findall(result.stdout)}
    assert measured == set(LOOKUP_TYPES), output
