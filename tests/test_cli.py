"""The ``receiver`` command as users run it: real subprocesses, real files."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import free_port, run_cli, stored_rows, write_config

import receiver
from receiver.testing import standard_report, standard_request

pytestmark = pytest.mark.long_running


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_cli passes os.environ on; none of these tests want inherited overrides."""
    monkeypatch.delenv("RECEIVER_CONFIG", raising=False)
    monkeypatch.delenv("RECEIVER_DATABASE_URL", raising=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir()
    return write_config(folder)


def staff(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("staff", *args, "--config", str(config), cwd=config.parent, env=env)


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].strip()
    return lines[0]


def db_bytes(folder: Path) -> bytes:
    """Every byte SQLite has on disk for receiver.db (main file, WAL, journal)."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("receiver.db*")))


# --- staff add / list / revoke ------------------------------------------------------


def test_staff_add_prints_only_the_token_and_stores_only_its_hash(config: Path) -> None:
    result = staff(config, "add", "alice", "--role", "admin")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    token = one_line(result.stdout)
    assert result.stdout == token + "\n"
    assert token.startswith("rcv_")
    assert len(token) >= 4 + 43  # 256 random bits, URL-safe base64

    [row] = stored_rows(config, "SELECT * FROM staff")
    assert row["name"] == "alice"
    assert row["role"] == "admin"
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["revoked_at"] is None
    assert all(token not in str(value) for value in row.values())
    assert token.encode() not in db_bytes(config.parent)  # SQLite's files (none on PostgreSQL)


def test_each_staff_member_gets_a_different_token(config: Path) -> None:
    first = staff(config, "add", "a1", "--role", "viewer")
    second = staff(config, "add", "a2", "--role", "viewer")
    assert first.returncode == second.returncode == 0
    assert first.stdout.strip() != second.stdout.strip()


def test_staff_list_shows_names_and_roles_never_tokens(config: Path) -> None:
    tokens = []
    for name, role in [("viv", "viewer"), ("sam", "sender"), ("ada", "admin")]:
        result = staff(config, "add", name, "--role", role)
        assert result.returncode == 0, result.stderr
        tokens.append(result.stdout.strip())
    result = staff(config, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    shown = {tuple(line.split()[:2]) for line in lines}
    assert shown == {("viv", "viewer"), ("sam", "sender"), ("ada", "admin")}
    assert all("active" in line for line in lines)
    for token in tokens:
        assert token not in result.stdout
        assert hashlib.sha256(token.encode()).hexdigest() not in result.stdout
    assert "rcv_" not in result.stdout


def test_staff_list_of_a_new_database_is_empty(config: Path) -> None:
    result = staff(config, "list")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_staff_revoke_then_a_second_revoke_exits_2(config: Path) -> None:
    token = staff(config, "add", "bob", "--role", "sender").stdout.strip()
    result = staff(config, "revoke", "bob")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    listing = staff(config, "list").stdout
    assert "bob" in listing and "revoked" in listing and "active" not in listing
    [row] = stored_rows(
        config,
        "SELECT revoked_at FROM staff WHERE token_hash = ?",
        (hashlib.sha256(token.encode()).hexdigest(),),
    )
    assert row["revoked_at"] is not None

    again = staff(config, "revoke", "bob")
    assert again.returncode == 2
    assert "bob" in one_line(again.stderr)
    assert again.stdout == ""


def test_revoking_an_unknown_name_exits_2(config: Path) -> None:
    result = staff(config, "revoke", "nobody")
    assert result.returncode == 2
    assert "nobody" in one_line(result.stderr)


def test_adding_an_existing_active_name_exits_2_and_keeps_the_first_token(config: Path) -> None:
    first = staff(config, "add", "carol", "--role", "viewer")
    assert first.returncode == 0
    again = staff(config, "add", "carol", "--role", "admin")
    assert again.returncode == 2
    assert again.stdout == ""
    assert "carol" in one_line(again.stderr)
    assert "Traceback" not in again.stderr
    rows = stored_rows(config, "SELECT role, token_hash FROM staff WHERE name = 'carol'")
    token_hash = hashlib.sha256(first.stdout.strip().encode()).hexdigest()
    assert rows == [{"role": "viewer", "token_hash": token_hash}]


def test_a_revoked_name_can_be_issued_a_new_token(config: Path) -> None:
    old = staff(config, "add", "dave", "--role", "viewer").stdout.strip()
    assert staff(config, "revoke", "dave").returncode == 0
    result = staff(config, "add", "dave", "--role", "admin")
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert new.startswith("rcv_") and new != old
    rows = sorted(line.split("\t") for line in staff(config, "list").stdout.splitlines())
    assert [(r[0], r[1], r[3].split()[0]) for r in rows] == [
        ("dave", "admin", "active"),
        ("dave", "viewer", "revoked"),
    ]


@pytest.mark.parametrize("role", ["root", "Admin"])
def test_a_bad_role_exits_2(config: Path, role: str) -> None:
    result = staff(config, "add", "erin", "--role", role)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "role" in result.stderr
    assert not (config.parent / "receiver.db").exists()


def test_a_missing_role_exits_2(config: Path) -> None:
    result = staff(config, "add", "erin")
    assert result.returncode == 2
    assert "--role" in result.stderr


@pytest.mark.parametrize("name", ["two words", "x" * 65, "slash/name"])
def test_an_invalid_staff_name_exits_2(config: Path, name: str) -> None:
    result = staff(config, "add", name, "--role", "viewer")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "name" in one_line(result.stderr)
    assert staff(config, "list").stdout == ""


def test_staff_with_a_missing_config_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = run_cli("staff", "list", "--config", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    assert str(missing) in one_line(result.stderr)
    assert not missing.exists()
    assert not (tmp_path / "receiver.db").exists()


def test_staff_without_a_config_in_the_cwd_does_not_create_one(tmp_path: Path) -> None:
    result = run_cli("staff", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "receiver.toml" in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.sqlite_only("a damaged SQLite file")
def test_an_unusable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "receiver.db").write_text("this is not an SQLite database\n" * 100)
    config = write_config(tmp_path)
    result = staff(config, "list")
    assert result.returncode == 1
    assert "receiver.db" in one_line(result.stderr)


# --- environment -------------------------------------------------------------------


@pytest.mark.sqlite_only("the SQLite file beside the config")
def test_receiver_config_selects_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    config = write_config(folder)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_cli(
        "staff", "add", "frank", "--role", "viewer", cwd=cwd, env={"RECEIVER_CONFIG": str(config)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rcv_")
    assert (folder / "receiver.db").exists()
    assert list(cwd.iterdir()) == []
    listing = run_cli("staff", "list", cwd=cwd, env={"RECEIVER_CONFIG": str(config)})
    assert listing.stdout.split()[:2] == ["frank", "viewer"]


@pytest.mark.sqlite_only("the SQLite file beside the config")
def test_the_config_flag_wins_over_receiver_config(tmp_path: Path) -> None:
    chosen = write_config(tmp_path)
    result = run_cli(
        "staff",
        "add",
        "gina",
        "--role",
        "viewer",
        "--config",
        str(chosen),
        cwd=tmp_path,
        env={"RECEIVER_CONFIG": str(tmp_path / "not-this.toml")},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "receiver.db").exists()


def test_a_missing_receiver_config_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    for args in (("staff", "list"), ("serve", "--port", str(free_port()))):
        result = run_cli(*args, cwd=tmp_path, env={"RECEIVER_CONFIG": str(missing)})
        assert result.returncode == 2, args
        assert str(missing) in one_line(result.stderr)
        assert not missing.exists()  # a named config is never generated
    assert not (tmp_path / "receiver.toml").exists()


def test_every_command_refuses_a_missing_config_with_the_same_line(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    commands = [
        ("serve", "--port", str(free_port())),
        ("worker",),
        ("staff", "list"),
        ("outbox", "held"),
        ("prune",),
        ("erase", "--to", "+639171234567"),
        ("backup", str(tmp_path / "copy.db")),
        ("export",),
        ("replay", "capture.jsonl", "--url", "http://127.0.0.1:9", "--resign"),
        ("reconcile",),
        ("subscribers", "list"),
        ("simulate", "--url", "http://127.0.0.1:9", "--provider", "default", "--messages", "1"),
    ]
    lines = set()
    for args in commands:
        result = run_cli(*args, "--config", str(missing), cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        lines.add(one_line(result.stderr))
    assert len(lines) == 1, lines  # one helper loads every command's config
    (line,) = lines
    assert line.startswith(f"receiver: {missing}: file not found")
    assert list(tmp_path.iterdir()) == []  # nothing made or written


def test_receiver_database_url_overrides_database_url(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    other = tmp_path / "data" / "other.db"
    env = {"RECEIVER_DATABASE_URL": f"sqlite:///{other}"}
    result = staff(config, "add", "hank", "--role", "viewer", env=env)
    assert result.returncode == 0, result.stderr
    assert other.exists()
    assert not (tmp_path / "receiver.db").exists()
    with sqlite3.connect(other) as conn:
        names = conn.execute("SELECT name FROM staff").fetchall()
    conn.close()
    assert names == [("hank",)]
    assert staff(config, "list", env=env).stdout.split()[:2] == ["hank", "viewer"]
    assert staff(config, "list").stdout == ""  # without the override: the file's database


def test_an_unsupported_receiver_database_url_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = staff(config, "list", env={"RECEIVER_DATABASE_URL": "mysql://u:p@db/x"})
    assert result.returncode == 2
    assert "database_url" in one_line(result.stderr)
    assert "u:p@" not in result.stderr  # the URL's password is not echoed


def test_an_unreachable_postgresql_store_is_one_line_without_its_password(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    url = "postgresql://u:s3cret@db.invalid/x"
    result = staff(config, "list", env={"RECEIVER_DATABASE_URL": url})
    assert result.returncode == 1
    assert "cannot open the PostgreSQL store" in one_line(result.stderr)
    assert "s3cret" not in result.stderr


# --- usage, version ----------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"receiver {receiver.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("bogus",),
        ("staff",),
        ("staff", "promote", "x"),
        ("serve", "--port", "eighty"),
        ("serve", "--unknown-flag"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage" in result.stderr
    assert list(tmp_path.iterdir()) == []  # bad usage never writes a config


def test_help_exits_0(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "staff"):
        assert command in result.stdout


# --- serve -------------------------------------------------------------------------


class Served:
    """A ``receiver serve`` subprocess started the way a user would."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.out = cwd.parent / f"{cwd.name}-{self.port}.out"
        self.err = cwd.parent / f"{cwd.name}-{self.port}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "receiver", "serve", "--port", str(self.port), *args],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.err.read_text()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"serve did not start:\n{self.err.read_text()}")

    def terminate(self) -> int:
        """SIGTERM; the exit status of a graceful stop (0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def stdout(self) -> str:
        return self.out.read_text()


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def test_serve_without_a_config_creates_one_and_serves(
    tmp_path: Path, served: list[Served]
) -> None:
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    first = Served(cwd)
    served.append(first)
    first.wait_ready()

    path = cwd / "receiver.toml"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = tomllib.loads(path.read_text())
    assert config["database_url"] == "sqlite:///receiver.db"
    assert len(config["session_secret"]) >= 32
    assert list(config["providers"]) == ["default"]
    default = config["providers"]["default"]
    assert default["type"] == "standard"
    secret = default["secrets"][0]
    assert secret.startswith("whsec_")

    output = first.stdout()
    assert str(path.resolve()) in output
    assert f"http://127.0.0.1:{first.port}/webhooks/default" in output
    assert secret not in output and config["session_secret"] not in output
    assert secret not in first.err.read_text()

    request = standard_request(secret, standard_report("cli-first-run", "delivered"))
    answer = httpx.post(
        first.base_url + request.path, content=request.body, headers=request.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    assert (cwd / "receiver.db").exists()
    assert first.terminate() == 0

    # A second start reuses the file (same secret) and the database.
    before = path.read_text()
    second = Served(cwd)
    served.append(second)
    second.wait_ready()
    assert path.read_text() == before
    assert "wrote a new config" not in second.stdout()
    again = standard_request(secret, standard_report("cli-first-run", "delivered"))
    answer = httpx.post(second.base_url + again.path, content=again.body, headers=again.headers)
    assert answer.status_code == 200, answer.text
    assert second.terminate() == 0

    with sqlite3.connect(cwd / "receiver.db") as conn:
        count = conn.execute(
            "SELECT report_count FROM messages WHERE provider_message_id = 'cli-first-run'"
        ).fetchall()
    conn.close()
    assert count == [(2,)]


def test_serve_with_a_missing_config_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", "missing.toml", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "missing.toml" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing.toml").exists()
    assert not (tmp_path / "receiver.toml").exists()
    assert not (tmp_path / "receiver.db").exists()


@pytest.mark.parametrize(
    ("database_url", "words"),
    [
        ("sqlite:///notes.txt", "notes.txt: file is not a database"),
        ("postgresql://postgres@127.0.0.1:1/receiver", "the PostgreSQL store at 127.0.0.1:1"),
    ],
)
def test_serve_refuses_a_store_it_cannot_open_with_one_line(
    tmp_path: Path, database_url: str, words: str
) -> None:
    """Before uvicorn starts: its failed startup would log a traceback and exit 3."""
    (tmp_path / "notes.txt").write_text("not a database, and longer than SQLite's header\n" * 4)
    config = write_config(tmp_path, {"database_url": database_url})
    result = run_cli("serve", "--config", str(config), "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("receiver: cannot open") and words in line, line
    assert "Traceback" not in result.stderr
