"""docs/alerts/receiver.rules.yml loads in Prometheus and each alert fires (and stays
quiet) as its unit tests in receiver.rules.test.yml say, checked by ``promtool`` (Debian
package ``prometheus``, installed by .ci/run). The metrics the rules name are the ones
the service exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from receiver.services.metrics import Metrics

ALERTS = Path(__file__).parent.parent / "docs" / "alerts"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("needs promtool: apt-get install -y prometheus (.ci/run does)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=ALERTS, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rules_are_valid() -> None:
    result = run("check", "rules", "receiver.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_every_alert_passes_its_unit_tests() -> None:
    result = run("test", "rules", "receiver.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    rules = set(re.findall(r"- alert: (\w+)", (ALERTS / "receiver.rules.yml").read_text()))
    tested = set(re.findall(r"alertname: (\w+)", (ALERTS / "receiver.rules.test.yml").read_text()))
    assert len(rules) == 6
    assert rules == tested


def test_the_rules_name_only_metrics_the_service_exports() -> None:
    exported = {
        sample.name for family in Metrics().registry.collect() for sample in family.samples
    } | {family.name for family in Metrics().registry.collect()}
    text = (ALERTS / "receiver.rules.yml").read_text()
    expressions = "\n".join(re.findall(r"expr: \|?\n?((?:.*\n)+?)\s+for:", text))
    named = set(re.findall(r"\b(receiver_[a-z_]+)", expressions))
    assert named, "no metric found in the rules"
    missing = {
        name
        for name in named
        if name not in exported
        and name.removesuffix("_total") not in exported
        and name.removesuffix("_bucket") not in exported
    }
    assert not missing
