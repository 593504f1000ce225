"""The README's test command is the one CI runs (.ci/run)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = re.compile(r"python -m pytest -n auto [^`#\n]*?(?=\s*(?:#|$))", re.M)


def test_the_readme_runs_the_suite_as_ci_does() -> None:
    [ci] = PYTEST.findall((ROOT / ".ci" / "run").read_text())
    readme = PYTEST.findall((ROOT / "README.md").read_text())
    assert len(readme) == 2  # the quick start and the Development section
    assert set(readme) == {ci}
