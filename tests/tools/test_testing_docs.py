"""docs/testing.md's integration test examples are run exactly as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(DOC.read_text())


def test_docs_have_complete_python_examples():
    examples = python_blocks()
    assert len(examples) == 2  # the staff API's, and the change feed subscriber's
    assert all("def test_" in example and "receiver_server" in example for example in examples)
    assert "receiver_staff" in examples[0] and "TestSubscriber" in examples[1]


@pytest.mark.parametrize("index", [0, 1])
def test_the_docs_examples_pass_with_the_installed_plugin(tmp_path, index):
    example = python_blocks()[index]
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
