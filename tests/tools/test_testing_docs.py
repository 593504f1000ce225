"""docs/testing.md's integration test example is run exactly as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(DOC.read_text())


def test_docs_have_one_complete_python_example():
    [example] = python_blocks()
    assert "def test_" in example
    assert "receiver_server" in example and "receiver_staff" in example


def test_the_docs_example_passes_with_the_installed_plugin(tmp_path):
    [example] = python_blocks()
    test_file = tmp_path / "test_docs_example.py"
    test_file.write_text(example)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"\b1 passed\b", output), output
