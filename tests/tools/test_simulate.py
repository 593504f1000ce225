"""`receiver simulate` against real servers: every stream verifies, output is
reproducible, and mismatches and bad usage give the documented exit codes."""

from __future__ import annotations

import re
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, ServerFactory, new_whsec, run_cli, stored_rows, write_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.testing import standard_report, standard_request, telnyx_public_key

pytestmark = pytest.mark.long_running

TELNYX_KEY = Ed25519PrivateKey.generate()
START = "2026-11-20T08:00:00Z"


def _providers() -> dict[str, dict[str, Any]]:
    return {
        "default": {"type": "standard", "secrets": [new_whsec()]},
        "twilio": {"type": "twilio", "secrets": [secrets.token_hex(16)]},
        "vonage": {
            "type": "vonage",
            "secrets": [secrets.token_urlsafe(24)],
            "signature_method": "sha256",
        },
        "plivo": {"type": "plivo", "secrets": [secrets.token_urlsafe(30)]},
        "sinch": {"type": "sinch", "auth": "hmac", "secrets": [secrets.token_urlsafe(16)]},
        "sinch-basic": {"type": "sinch", "auth": "basic", "secrets": ["sinch:s3cret-pass"]},
        "infobip": {"type": "infobip", "secrets": ["infobip:s3cret-pass"]},
        "bird": {"type": "bird", "secrets": [secrets.token_urlsafe(24)]},
        "jasmin": {"type": "jasmin", "secrets": ["jasmin:s3cret-pass"]},
        "telnyx": {"type": "telnyx", "public_key": telnyx_public_key(TELNYX_KEY)},
        "futuresms": {"type": "futuresms", "url_token": secrets.token_urlsafe(32)},
        "relayos": {"type": "relayos", "url_token": secrets.token_urlsafe(32)},
        "txtly": {"type": "txtly", "secrets": ["whsec_" + secrets.token_hex(16)]},
        "txtly-token": {"type": "txtly", "url_token": secrets.token_urlsafe(24)},
        "sendcomms": {"type": "sendcomms", "secrets": [secrets.token_urlsafe(24)]},
    }


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, Path]]:
    """One server with a provider of every type, a viewer token, and a Telnyx key file."""
    workdir = tmp_path_factory.mktemp("simulate")
    server = Server(workdir, write_config(workdir, providers=_providers())).start()
    key_file = workdir / "telnyx.pem"
    key_file.write_bytes(
        TELNYX_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    try:
        yield server, server.staff_token("simulator"), key_file
    finally:
        server.stop(signal.SIGKILL)


def simulate(server: Server, *args: str, config: Path | None = None) -> Any:
    return run_cli(
        "simulate",
        "--url",
        server.base_url,
        "--config",
        str(config or server.config_path),
        *args,
        timeout=60,
    )


def message_lines(stdout: str) -> list[list[str]]:
    """The per-message lines: provider message id, ``expected STATUS [(CODE)]``, verdict."""
    return [line.split("\t") for line in stdout.splitlines() if "\texpected " in line]


def without_outcomes(stdout: str) -> str:
    return re.sub(r"; outcomes [^;]*;", "; outcomes ...;", stdout)


def stored(api: httpx.Client, provider: str, provider_message_id: str) -> Any:
    answer = api.get(
        "/v1/messages", params={"provider": provider, "provider_message_id": provider_message_id}
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert len(items) == 1
    return items[0]


@pytest.mark.parametrize(
    "provider",
    [
        "default",
        "twilio",
        "vonage",
        "plivo",
        "sinch",
        "sinch-basic",
        "infobip",
        "bird",
        "jasmin",
        "telnyx",
        "futuresms",
        "relayos",
        "txtly",
        "txtly-token",
        "sendcomms",
    ],
)
def test_a_shuffled_stream_with_duplicates_verifies(
    shared: tuple[Server, str, Path], provider: str
) -> None:
    server, token, key_file = shared
    result = simulate(
        server,
        "--provider",
        provider,
        "--messages",
        "16",
        "--duplicates",
        "0.3",
        "--shuffle",
        "--seed",
        "11",
        "--start",
        START,
        "--verify-token",
        token,
        "--telnyx-private-key",
        str(key_file),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "16 of 16 messages match, 0 mismatches" in result.stdout
    header = result.stdout.splitlines()[0]
    assert f"provider {provider} " in header and "shuffled" in header
    assert "(0 duplicates)" not in header
    summary = next(line for line in result.stdout.splitlines() if line.startswith("summary:"))
    answers = summary.split("answers ")[1].split(";")[0]
    assert all(part.startswith("2") for part in answers.split(", ")), answers
    if provider == "jasmin":  # Jasmin's answer is ACK/Jasmin, without counts
        assert "reports not counted" in summary
    else:
        assert "duplicates 0" not in summary  # the server recognised the redeliveries

    lines = message_lines(result.stdout)
    assert len(lines) == 16
    assert all(line[2] == "ok" for line in lines)
    finals = {line[1].split()[1] for line in lines}
    assert "delivered" in finals and len(finals) >= 3, finals  # some failures, some pending
    # The staff API, asked independently, holds exactly the printed expectations.
    with server.api(token) as api:
        for pmid, expected, _ in lines:
            _, status, *code = expected.split(" ")
            record = stored(api, provider, pmid)
            assert record["status"] == status
            assert record["error_code"] == (code[0].strip("()") if code else None)
            assert record["report_count"] >= 1


def test_same_seed_gives_the_same_stream_and_output(server_factory: ServerFactory) -> None:
    providers = {"default": {"type": "standard", "secrets": [new_whsec()]}}
    first, second = server_factory(providers=providers), server_factory(providers=providers)
    args = ["--provider", "default", "--messages", "15", "--duplicates", "0.4", "--shuffle"]
    one = simulate(first, *args, "--seed", "99", "--start", START)
    two = simulate(second, *args, "--seed", "99", "--start", START)
    assert one.returncode == two.returncode == 0, one.stdout + two.stdout
    # Everything but applied-vs-superseded, which depends on concurrent arrival order.
    assert without_outcomes(one.stdout) == without_outcomes(two.stdout)
    assert "duplicates 0" not in one.stdout
    assert "seed 99, 15 messages" in one.stdout
    bodies = []
    for server in (first, second):
        bodies.append(
            sorted(row["body"] for row in stored_rows(server, "SELECT body FROM raw_requests"))
        )
    assert bodies[0] == bodies[1]  # the same reports, only the signatures are fresh

    # The same stream again is all duplicates and changes nothing.
    again = simulate(first, *args, "--seed", "99", "--start", START)
    assert again.returncode == 0
    assert message_lines(again.stdout) == message_lines(one.stdout)
    assert "outcomes applied 0, superseded 0, duplicates 55;" in again.stdout

    other = simulate(first, *args, "--seed", "100", "--start", START)
    assert other.returncode == 0
    assert message_lines(other.stdout) != message_lines(one.stdout)


def test_a_stored_status_that_differs_is_a_mismatch(server: Server) -> None:
    token = server.staff_token("checker")
    args = ["--provider", "default", "--messages", "12", "--seed", "5", "--start", START]
    first = simulate(server, *args, "--verify-token", token)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = message_lines(first.stdout)
    # A report the stream does not contain: a message it leaves short of delivery is
    # marked delivered behind its back.
    victim = next(pmid for pmid, expected, _ in lines if not expected.startswith("expected deliv"))
    extra = standard_request(server.secret(), standard_report(victim, "delivered"))
    assert server.post(extra).status_code == 200

    again = simulate(server, *args, "--verify-token", token)
    assert again.returncode == 1
    bad = [line for line in message_lines(again.stdout) if line[2] != "ok"]
    assert len(bad) == 1 and bad[0][0] == victim
    assert bad[0][2] == "MISMATCH: stored delivered"
    assert "11 of 12 messages match, 1 mismatches" in again.stdout


def test_a_server_that_never_got_the_stream_is_a_mismatch(server_factory: ServerFactory) -> None:
    ours = server_factory()
    theirs = server_factory()  # the same provider name, another secret: every post refused
    token = theirs.staff_token("checker")
    result = simulate(
        theirs,
        *("--provider", "default", "--messages", "3", "--verify-token", token),
        config=ours.config_path,
    )
    assert result.returncode == 1
    assert [line[2] for line in message_lines(result.stdout)] == ["MISMATCH: not found"] * 3
    assert "summary: answers 401 x" in result.stdout
    assert "error: message #" in result.stdout and "HTTP 401" in result.stdout
    with theirs.api(token) as api:
        assert api.get("/v1/messages").json()["items"] == []


def test_a_large_stream_prints_only_mismatches_and_the_summary(server: Server) -> None:
    token = server.staff_token("checker")
    result = simulate(
        server,
        *("--provider", "default", "--messages", "120", "--concurrency", "16"),
        *("--seed", "3", "--verify-token", token),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert message_lines(result.stdout) == []
    assert "120 of 120 messages match, 0 mismatches" in result.stdout
    assert len(result.stdout.splitlines()) == 3  # header, summary, verify


def test_unknown_provider_is_a_usage_error(server: Server) -> None:
    result = simulate(server, "--provider", "nosuch", "--messages", "3")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "providers.nosuch" in lines[0] and "not configured" in lines[0]


def test_telnyx_without_its_private_key_is_a_usage_error(
    shared: tuple[Server, str, Path], tmp_path: Path
) -> None:
    server, _, _ = shared
    result = simulate(server, "--provider", "telnyx", "--messages", "3")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--telnyx-private-key" in result.stderr
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    wrong = simulate(
        server, "--provider", "telnyx", "--messages", "3", "--telnyx-private-key", str(other)
    )
    assert wrong.returncode == 2
    assert "providers.telnyx.public_key" in wrong.stderr


@pytest.mark.parametrize(
    "args",
    [["--duplicates", "1.5"], ["--messages", "0"], ["--start", "yesterday"]],
)
def test_bad_options_are_usage_errors(server: Server, args: list[str]) -> None:
    options = {"--messages": "3", "--duplicates": "0"}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [part for pair in options.items() for part in pair]
    result = simulate(server, "--provider", "default", *flat)
    assert result.returncode == 2
    assert "error:" in result.stderr
