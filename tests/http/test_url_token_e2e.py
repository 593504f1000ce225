"""``url_token`` end to end: a real ``receiver serve`` refuses reports without the
secret in the query, never stores it, and ``receiver replay --resign`` puts it back."""

from __future__ import annotations

import json
from dataclasses import replace

from conftest import ON_POSTGRESQL, ServerFactory, new_whsec, run_cli, stored_rows

from receiver.testing import standard_report, standard_request

TOKEN = "tok_" + "Q3x9" * 7
SECRET = new_whsec()
PROVIDERS = {"acme": {"type": "standard", "secrets": [SECRET], "url_token": TOKEN}}


def report(message_id: str, status: str = "delivered"):
    return standard_request(SECRET, standard_report(message_id, status), provider="acme")


def test_a_report_must_carry_the_token(server_factory: ServerFactory, tmp_path):
    server = server_factory(providers=PROVIDERS)
    signed = report("prov-1")

    missing = server.post(signed)
    wrong = server.post(replace(signed, path=signed.path + "?token=tok_" + "x" * 28))
    good = server.post(replace(signed, path=f"{signed.path}?token={TOKEN}"))

    assert (missing.status_code, missing.json()["code"]) == (401, "SIGNATURE_MISSING")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "SIGNATURE_INVALID")
    assert TOKEN not in missing.text + wrong.text
    assert (good.status_code, good.json()["applied"]) == (200, 1)
    assert TOKEN not in server.log_path.read_text()


def test_the_stored_request_hides_the_token_and_replay_resign_restores_it(
    server_factory: ServerFactory, tmp_path
):
    source = server_factory(providers=PROVIDERS)
    signed = report("prov-2")
    assert source.post(replace(signed, path=f"{signed.path}?token={TOKEN}")).status_code == 200

    export = run_cli("export", "--config", str(source.config_path))
    assert export.returncode == 0, export.stderr
    [record] = [json.loads(line) for line in export.stdout.splitlines()]
    assert record["path"] == "/webhooks/acme?token=REDACTED"
    assert TOKEN not in export.stdout
    [raw] = stored_rows(source, "SELECT * FROM raw_requests")
    assert raw["path"] == "/webhooks/acme?token=REDACTED"
    assert all(TOKEN not in str(value) for value in raw.values())
    if not ON_POSTGRESQL:  # nowhere in SQLite's files either (its WAL, free pages)
        stored = b"".join(path.read_bytes() for path in source.workdir.glob("receiver.db*"))
        assert b"token=REDACTED" in stored and TOKEN.encode() not in stored

    target = server_factory(providers=PROVIDERS)
    capture = tmp_path / "capture.jsonl"
    capture.write_text(export.stdout)
    plain = run_cli("replay", str(capture), "--url", target.base_url)
    assert plain.returncode == 1  # the redacted token is refused, as it should be
    resigned = run_cli(
        "replay",
        str(capture),
        "--url",
        target.base_url,
        "--resign",
        "--config",
        str(target.config_path),
    )
    assert resigned.returncode == 0, resigned.stdout + resigned.stderr
    with target.api(target.staff_token("viewer")) as api:
        [message] = api.get("/v1/messages", params={"provider_message_id": "prov-2"}).json()[
            "items"
        ]
    assert message["status"] == "delivered"
