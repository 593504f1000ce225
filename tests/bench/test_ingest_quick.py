"""The ingest benchmark (bench/ingest.py) runs end to end in its short mode.

Not a timing test: it checks that the script still starts every server, drives each
with wrk and prints its table with every row, that every request was answered 200 and
that every 200 was on disk. The figures themselves belong in docs/performance.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.long_running

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "ceiling",
    "naive",
    "receiver, Standard Webhooks, new reports",
    "receiver, duplicates",
    "receiver, new reports, store answering at once",
    "receiver, new reports, one subscriber attached",
    "receiver, new reports, one subscriber, delivered by receiver worker",
    "receiver, Twilio form posts, new reports",
    "receiver, new reports, no delivery aggregates (baseline)",
    "receiver, new reports, --workers 2",
    "receiver, new reports, PostgreSQL",
    "receiver, new reports, PostgreSQL, --workers 2",
)


def test_wrk_is_installed():
    """The benchmark's load generator; .ci/run installs it (apt-get install wrk)."""
    assert shutil.which("wrk") is not None, "install wrk: apt-get install -y wrk"


def table(output: str) -> list[dict[str, str]]:
    """The printed Markdown table as one dict per row."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| row |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def test_the_benchmark_runs_in_quick_mode_and_prints_every_row():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    rows = table(done.stdout)
    assert len(rows) == len(ROWS), output
    for row, name in zip(rows, ROWS, strict=True):
        assert row["row"].startswith(name), row
        assert row["non-2xx"] == "0", row
        assert float(row["requests/s"].replace(",", "")) > 0, row
    assert "stored >= answered: yes" in done.stdout, output
    assert "benchmark check failed" not in done.stdout, output
