"""A production install (the README's ``pip install .``, the Dockerfile's ``pip install
/src``) works: the wheel holds every file of the package, and the service needs only its
runtime dependencies (pyproject.toml's ``dependencies``), not the ``test`` extra: no
pytest, no provider SDKs, no hypothesis.

The dependency tests run Python with every module that the runtime dependencies do not
install made unimportable (a ``sitecustomize`` on ``PYTHONPATH``, so ``receiver serve``'s
own process has it too): what only a ``pip install receiver`` would have.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from conftest import ServerFactory
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from receiver.testing import standard_report, standard_request

ROOT = Path(__file__).resolve().parents[1]

BLOCKED_ENV = "RECEIVER_TEST_UNINSTALLED"
SITECUSTOMIZE = f'''
import json, os, sys
from importlib.abc import MetaPathFinder

class Uninstalled(MetaPathFinder):
    """Finds nothing and lets nothing else find a module the runtime does not install."""
    blocked = frozenset(json.loads(os.environ["{BLOCKED_ENV}"]))

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not installed)", name=name)
        return None

sys.meta_path.insert(0, Uninstalled())
'''


def runtime_distributions() -> set[str]:
    """The distributions ``pip install receiver`` installs: its dependencies, theirs,
    and so on, with the extras each names (e.g. ``uvicorn[standard]``)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("receiver", frozenset())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            needed = requires(name) or []
        except PackageNotFoundError:  # a marker-less optional dependency not installed here
            continue
        for text in needed:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({"extra": extra}) for extra in (extras or {""})
            ):
                key = canonicalize_name(requirement.name)
                todo.append((key, frozenset(requirement.extras)))
    return {name for name, _ in seen}


def uninstalled_modules() -> list[str]:
    """The top-level modules installed here that no runtime distribution provides."""
    runtime = runtime_distributions()
    return sorted(
        module
        for module, distributions in packages_distributions().items()
        if not any(canonicalize_name(d) in runtime for d in distributions)
    )


@pytest.fixture(scope="module")
def uninstalled() -> list[str]:
    modules = uninstalled_modules()
    assert {"pytest", "_pytest", "hypothesis", "twilio"} <= set(modules)  # the test extra's
    assert not {"starlette", "uvicorn", "uvloop", "pydantic", "httpx"} & set(modules)
    return modules


@pytest.fixture
def production_python(
    uninstalled: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every Python started from this test (CLI, ``receiver serve``) sees only the
    runtime's modules."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv(BLOCKED_ENV, json.dumps(uninstalled))
    yield


IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, receiver
failed = {}
for module in pkgutil.walk_packages(receiver.__path__, "receiver."):
    if module.name.endswith(".__main__"):
        continue
    try:
        importlib.import_module(module.name)
    except ImportError as error:
        failed[module.name] = str(error)
try:
    import pytest
except ImportError:
    pass
else:
    failed["(the test's own check)"] = "pytest was importable"
print(json.dumps(failed))
"""


def test_every_module_but_the_pytest_plugin_imports_without_the_test_extra(
    production_python: None,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    failed = json.loads(done.stdout)
    assert failed == {"receiver.testing.pytest_plugin": "No module named 'pytest' (not installed)"}


EVERY_COMMANDS_HELP = """
import contextlib, io, json, re
from receiver.cli import main

def help_page(*argv):
    page = io.StringIO()
    with contextlib.redirect_stdout(page), contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    return page.getvalue()

top = help_page()
commands = re.search(r"[{]([a-z,]+)[}]", top)[1].split(",")
print(json.dumps({"": top} | {command: help_page(command) for command in commands}))
"""


def test_every_command_starts_without_the_test_extra(production_python: None) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EVERY_COMMANDS_HELP], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    pages = json.loads(done.stdout)
    assert pages.pop("").startswith("usage: receiver [-h]")
    assert {"serve", "worker", "staff", "replay", "simulate", "migrate"} <= set(pages)
    for command, page in pages.items():
        assert page.startswith(f"usage: receiver {command}"), page


def test_serve_stores_a_report_without_the_test_extra(
    production_python: None, server_factory: ServerFactory
) -> None:
    server = server_factory()
    request = standard_request(server.secret(), standard_report("prod-1", "delivered"))
    assert server.post(request).status_code == 200


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    """Templates, static files and the schema too (receiver/store/schema.sql is a
    symlink to the top-level schema.sql: the wheel must hold the file itself)."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, ROOT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("receiver-*.whl")
    package = ROOT / "receiver"
    files = {
        path.relative_to(ROOT).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        assert files <= set(archive.namelist())
        assert archive.read("receiver/store/schema.sql") == (ROOT / "schema.sql").read_bytes()
    assert {"receiver/console/templates/login.html", "receiver/py.typed"} <= files
