"""Shared fixtures: real ``receiver serve`` processes on loopback with real SQLite files.

With ``RECEIVER_TEST_BACKEND=postgresql`` every config ``write_config`` writes (and so
every server of ``server_factory``, ``running_server`` and the plugin's
``receiver_server``) names instead a fresh PostgreSQL database cloned from the migrated
template, dropped when the test or module that made it ends; the tests marked
``sqlite_only`` are skipped (docs/testing.md, "The suite on PostgreSQL").

When the session ends, every server log it produced is searched for secrets and full
phone numbers (tests/leak_scan.py); any found fails the run. A test that gives a server
a secret the config does not hold (a console password) names it with ``remember_secret``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from leak_scan import find_leaks, logs_under
from pg import fresh_database, migrated_template
from playwright.sync_api import Browser, sync_playwright

from receiver.config import load
from receiver.records import NewSend
from receiver.store import open_store
from receiver.store.base import Store
from receiver.store.sql import SqlStore
from receiver.testing.pytest_plugin import ReceiverServer as Server
from receiver.testing.pytest_plugin import free_port, new_whsec
from receiver.testing.pytest_plugin import write_config as write_plugin_config

# The plugin's fixtures (receiver_server, ...). Installed, it loads by its entry point
# before pytest-cov starts measuring, and every module it imports would count as never
# run: pyproject.toml's addopts turn the entry point off (-p no:receiver) for this suite.
pytest_plugins = ["receiver.testing.pytest_plugin"]

__all__ = [
    "ON_POSTGRESQL",
    "PROBLEM",
    "Server",
    "ServerFactory",
    "another_store",
    "assert_problem",
    "free_port",
    "new_whsec",
    "outbox_has",
    "outbox_row",
    "remember_secret",
    "run_cli",
    "running_server",
    "stored_rows",
    "stored_value",
    "unique",
    "until",
    "write_config",
]


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m receiver ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


ServerFactory = Callable[..., Server]

PROBLEM = "application/problem+json"


def assert_problem(answer: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``answer`` is an RFC 9457 problem (README "HTTP API"): the status, the problem+json
    content type, non-empty ``type``, ``title`` and ``detail``, ``status`` and ``code``
    (``code``'s value when given), the request id of the answer, no traceback. Its body."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].split(";")[0].strip() == PROBLEM
    body: dict[str, Any] = answer.json()
    for member in ("type", "title", "detail", "code"):
        assert isinstance(body.get(member), str) and body[member], (member, body)
    assert body["status"] == status
    assert body["request_id"] == answer.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in answer.text
    return body


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium, for the console's browser tests (Playwright's own download does
not work here)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module."""
    if not CHROMIUM.exists():
        pytest.fail("needs Debian's chromium: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def unique(prefix: str) -> str:
    """``prefix``, ``-`` and ten random hex digits: a name or id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def queue_send(
    store: Store,
    provider: str,
    to: str,
    body: str,
    *,
    sender: str | None = None,
    now: datetime | None = None,
    client_id: str = "stf_test",
) -> str:
    """Commit a message to send as ``POST /v1/messages`` does, with neither an
    idempotency key nor a client reference; its id."""
    send = NewSend(
        client_id=client_id,
        provider=provider,
        to=to,
        body=body,
        sender=sender,
        client_reference=None,
        segments=1,
        idempotency_key=None,
        fingerprint=None,
        key_expires_at=None,
        now=now or datetime.now(UTC),
    )
    answer = await store.create_send(send, lambda record: (202, "{}"))
    assert answer.message_id is not None
    return answer.message_id


BACKENDS = ("sqlite", "postgresql")
"""The store backends: the contract suite (tests/store/contract) and the route-level set
(the modules whose shared server takes ``backend_settings``) run on each."""

TEST_BACKEND = os.environ.get("RECEIVER_TEST_BACKEND", "sqlite")
"""The backend of the servers whose config names none (``RECEIVER_TEST_BACKEND``)."""
if TEST_BACKEND not in BACKENDS:
    raise pytest.UsageError(f"RECEIVER_TEST_BACKEND={TEST_BACKEND!r}: one of {BACKENDS}")
ON_POSTGRESQL = TEST_BACKEND == "postgresql"

_TEMPLATE: list[str] = []
"""In PostgreSQL mode, the session's migrated template (``postgres_template``)."""
_DATABASES: dict[Path, str] = {}
"""The PostgreSQL database of each config directory, as the SQLite file beside it."""
_DROPS: list[contextlib.ExitStack] = []
"""Drops the databases ``write_config`` made: one stack each for the session, the module
and the test under way; a database goes on the innermost, and goes with it."""


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database with the store's schema, made once per session (per xdist
    worker): the databases of ``store_url`` and ``backend_settings`` are its copies."""
    with migrated_template() as name:
        yield name


@contextlib.contextmanager
def _dropping_at_end(directories: set[Path]) -> Iterator[None]:
    with contextlib.ExitStack() as drops:
        _DROPS.append(drops)
        try:
            yield
        finally:
            _DROPS.pop()
            for directory in [made for made in _DATABASES if made not in directories]:
                del _DATABASES[directory]


@pytest.fixture(scope="session", autouse=True)
def _session_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    """In PostgreSQL mode, the template the session's databases are cloned from."""
    if ON_POSTGRESQL:
        _TEMPLATE.append(request.getfixturevalue("postgres_template"))
    with _dropping_at_end(set()):
        yield


@pytest.fixture(scope="module", autouse=True)
def _module_databases() -> Iterator[None]:
    """Drops the databases made for a module's servers when the module ends."""
    with _dropping_at_end(set(_DATABASES)):
        yield


@pytest.fixture(autouse=True)
def _test_databases() -> Iterator[None]:
    """Drops the databases made for a test's own servers when it ends (after them)."""
    with _dropping_at_end(set(_DATABASES)):
        yield


def _database_for(directory: Path) -> str:
    """The URL of ``directory``'s PostgreSQL database: a fresh copy of the template the
    first time, dropped with the innermost scope under way."""
    if directory not in _DATABASES:
        _DATABASES[directory] = _DROPS[-1].enter_context(fresh_database(template=_TEMPLATE[0]))
    return _DATABASES[directory]


def write_config(
    directory: Path,
    settings: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """The plugin's ``write_config``: a SQLite store beside the config, or in PostgreSQL
    mode (``RECEIVER_TEST_BACKEND``) the directory's own database, unless ``settings``
    name one."""
    if ON_POSTGRESQL and "database_url" not in (settings or {}):
        settings = {"database_url": _database_for(directory), **(settings or {})}
    return write_plugin_config(directory, settings, providers)


@pytest.fixture
def receiver_settings(tmp_path: Path) -> dict[str, Any]:
    """The plugin's ``receiver_server`` settings: in PostgreSQL mode, a database of its own."""
    return {"database_url": _database_for(tmp_path)} if ON_POSTGRESQL else {}


@pytest.fixture(scope="module", params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Config keys that put a module's shared server on each backend in turn: a SQLite
    file beside the config (named, so that PostgreSQL mode leaves it), a fresh PostgreSQL
    database with the store's schema for the module (dropped after)."""
    if request.param == "sqlite":
        yield {"database_url": "sqlite:///receiver.db"}
        return
    with fresh_database(template=request.getfixturevalue("postgres_template")) as url:
        yield {"database_url": url}


def stored_rows(
    server: Server | Path, sql: str, params: Sequence[object] = ()
) -> list[dict[str, Any]]:
    """The rows ``sql`` reads from the store of ``server`` (or of a config file),
    whichever backend, through a store of our own (for the checks the HTTP API and the
    CLI cannot make)."""
    config_path = server if isinstance(server, Path) else server.config_path

    async def read() -> list[dict[str, Any]]:
        async with another_store(load(config_path).store_url) as reader:
            return await reader.select(sql, params)

    # A thread of its own: a sync test's event loop may be set (not running) on this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """An open store on ``store_url``, closed after the test."""
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@contextlib.asynccontextmanager
async def another_store(store_url: str) -> AsyncIterator[SqlStore]:
    """A second store on the same database, with connections of its own, opened to read:
    what it sees was committed."""
    other = open_store(store_url)
    await other.open(ingest=False)
    try:
        yield other
    finally:
        await other.close()


async def stored_value(store: SqlStore, sql: str, params: Sequence[object] = ()) -> Any:
    """The first column of the one row ``sql`` reads."""
    [row] = await store.select(sql, params)
    return next(iter(row.values()))


async def outbox_row(store: SqlStore, message_id: str) -> dict[str, Any]:
    """The ``outbox`` row of ``message_id``."""
    [row] = await store.select("SELECT * FROM outbox WHERE message_id = ?", (message_id,))
    return row


async def outbox_has(store: SqlStore, message_id: str, **fields: object) -> bool:
    """Whether the ``outbox`` row of ``message_id`` holds these values (for ``until``)."""
    row = await outbox_row(store, message_id)
    return all(row[name] == value for name, value in fields.items())


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 20.0
) -> None:
    """Wait for ``condition`` (a safety timeout only: nothing here measures speed)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def running_server(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    settings: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
) -> Iterator[Server]:
    """A started server for a module-scoped fixture; killed when the block ends."""
    workdir = tmp_path_factory.mktemp(name)
    server = Server(workdir, write_config(workdir, settings, providers)).start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database (tests/pg.py), dropped after the test."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store's ``database_url``, once per backend: a SQLite file, then a new
    PostgreSQL database with the store's schema and no rows (dropped after the test).
    (``postgres_url`` is empty: the PostgreSQL tests of migrating from nothing.)"""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'receiver.db'}"
        return
    with fresh_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with config overrides; every one is stopped at teardown."""
    started: list[Server] = []

    def start(
        settings: dict[str, Any] | None = None, providers: dict[str, dict[str, Any]] | None = None
    ) -> Server:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        server = Server(workdir, write_config(workdir, settings, providers))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop(signal.SIGKILL)


@pytest.fixture
def server(server_factory: ServerFactory) -> Server:
    """A fresh server with one ``standard`` provider named ``default``."""
    return server_factory()


# --- the log scan ------------------------------------------------------------------

_REMEMBERED: set[str] = set()
_BASETEMP: list[Path] = []
_SCANNED: list[int] = []
_LEAKS: list[str] = []
MOST_LEAKS_SHOWN = 20
WORKER_SCAN = "log-scan.json"
"""Where an xdist worker leaves its scan's result for the controller, in its basetemp."""


def remember_secret(secret: str) -> str:
    """Have the end-of-session log scan look for ``secret`` too; returns it."""
    _REMEMBERED.add(secret)
    return secret


@pytest.fixture(scope="session", autouse=True)
def _session_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where this session's servers keep their logs, for the scan at the end."""
    _BASETEMP.append(tmp_path_factory.getbasetemp())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files marked ``long_running`` first (the order is otherwise kept): pytest-xdist
    hands out whole files in this order (``--no-loadscope-reorder`` in pyproject.toml),
    and a long one handed out last would keep one worker busy while the other idles.
    In PostgreSQL mode the tests marked ``sqlite_only`` are skipped, with their reason."""
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)
    if not ON_POSTGRESQL:
        return
    for item in items:
        if (marker := item.get_closest_marker("sqlite_only")) is not None:
            reason = marker.args[0] if marker.args else "about SQLite itself"
            item.add_marker(pytest.mark.skip(reason=f"sqlite_only: {reason}"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any server log of the session holds a secret or a full number.

    Each process that ran tests scans its own logs (it alone knows the secrets its tests
    remembered). Under pytest-xdist a worker writes its result to ``log-scan.json`` in its
    basetemp and the controller, which ran no test, adds them up and fails the run.
    """
    is_worker = hasattr(session.config, "workerinput")
    if _BASETEMP:
        _SCANNED.append(sum(1 for base in _BASETEMP for _ in logs_under(base)))
        _LEAKS.extend(str(leak) for base in _BASETEMP for leak in find_leaks(base, _REMEMBERED))
        if is_worker:
            result = {"scanned": sum(_SCANNED), "leaks": _LEAKS}
            (_BASETEMP[0] / WORKER_SCAN).write_text(json.dumps(result))
    elif not is_worker and session.config.pluginmanager.hasplugin("xdist"):
        root = session.config._tmp_path_factory.getbasetemp()  # xdist's own way to find it
        for worker_scan in sorted(root.glob(f"*/{WORKER_SCAN}")):
            result = json.loads(worker_scan.read_text())
            _SCANNED.append(result["scanned"])
            _LEAKS.extend(result["leaks"])
    if _LEAKS and not is_worker:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the log scan searched and found (printed before the final counts)."""
    if not _SCANNED:
        return
    terminalreporter.section("log scan", red=bool(_LEAKS), green=not _LEAKS)
    terminalreporter.write_line(
        f"{sum(_SCANNED)} server log(s) searched for secrets and full phone numbers: "
        f"{len(_LEAKS)} found"
    )
    for leak in _LEAKS[:MOST_LEAKS_SHOWN]:
        terminalreporter.write_line(f"  {leak}", red=True)
