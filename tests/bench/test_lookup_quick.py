"""bench/lookup.py runs end to end in its short mode, so it cannot rot.

Nothing here is timed: the benchmark reports latencies, the test only checks that it
generated every size, ran every lookup (through the store and over HTTP) and found an
index behind each one. So the benchmark's time limit per lookup kind is off
(``--budget-seconds 0``): on a loaded machine a kind could run out of time with every
lookup on its index, and the plan markers already catch a full scan.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.long_running

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "lookup.py"
STORE_LOOKUPS = 8  # 6 lookups and 2 delivery stats (issue 15)
HTTP_LOOKUPS = 5
MESSAGES = 20_000  # --quick's
LOOKUPS = 50
"""A quarter of ``--quick``'s: the suite checks that every size, lookup and plan is there
(the figures come from full runs, docs/performance.md), and the per-day delivery stats
alone cost 200 x 20-85 ms per size at the default."""
SIZE_ROW = re.compile(r"^\| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| [\d,.]+ \| ([\d,]+) \|", re.M)
LOOKUP_ROW = re.compile(r"^\| ([^|]+?) \| (store|HTTP) \| ([\d,]+) \| ([\d,]+) \|", re.M)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_quick_run_reports_every_size_lookup_and_plan(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--quick", "--budget-seconds", "0"),
            *("--lookups", str(LOOKUPS)),
            *("--workdir", str(tmp_path / "store")),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,  # a safety timeout only: the suite's load can make it slow
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    sizes = [tuple(number(n) for n in row) for row in SIZE_ROW.findall(result.stdout)]
    assert [s[0] for s in sizes] == [MESSAGES // 4, MESSAGES // 2, MESSAGES], output
    for messages, events, raw_requests, per_message in sizes:
        assert events == 3 * messages  # three reports each, redeliveries add no rows
        assert messages < raw_requests < events  # Infobip and Standard batches share one
        assert per_message > 0

    rows = LOOKUP_ROW.findall(result.stdout)
    store = [r for r in rows if r[1] == "store"]
    http = [r for r in rows if r[1] == "HTTP"]
    assert len(store) == 3 * STORE_LOOKUPS and len(http) == HTTP_LOOKUPS, output
    assert {number(r[2]) for r in store} == {MESSAGES // 4, MESSAGES // 2, MESSAGES}
    assert all(number(r[3]) == LOOKUPS for r in rows), output  # every lookup ran
    assert {r[0] for r in http} >= {"provider_message_id", "to"}
    assert f"ROWS {3 * STORE_LOOKUPS + HTTP_LOOKUPS} CHECKPOINTS 3" in result.stdout

    markers = re.findall(r"^PLAN ([A-Z-]+) (.+?):", result.stdout, re.M)
    assert len({name for _, name in markers}) == STORE_LOOKUPS, output
    assert {verdict for verdict, _ in markers} == {"OK"}, output
