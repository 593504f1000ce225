"""receiver.config.load on real files: a bad config is one ConfigError naming file, key, problem."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import new_whsec, run_cli
from pydantic import ValidationError

from receiver.config import load, resolve_path, write_default
from receiver.errors import ConfigError, UsageError
from receiver.providers.base import ProviderConfig

SESSION = 'session_secret = "' + "s" * 40 + '"\n'
SECRET = new_whsec()
PROVIDER = f'[providers.default]\ntype = "standard"\nsecrets = ["{SECRET}"]\n'


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECEIVER_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECEIVER_CONFIG", raising=False)


def write(tmp_path: Path, text: str, name: str = "receiver.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# (id, file text, acceptable keys, fragment of the problem)
BAD_CONFIGS = [
    ("unknown top-level key", SESSION + 'colour = "blue"\n' + PROVIDER, {"colour"}, "not a known"),
    (
        "unknown provider key",
        SESSION + PROVIDER + 'colour = "blue"\n',
        {"providers.default.colour"},
        "not a known",
    ),
    (
        "unknown provider type",
        SESSION + f'[providers.default]\ntype = "pigeon"\nsecrets = ["{SECRET}"]\n',
        {"providers.default.type"},
        "standard",
    ),
    (
        "provider without type",
        SESSION + f'[providers.default]\nsecrets = ["{SECRET}"]\n',
        {"providers.default.type"},
        "standard",
    ),
    (
        "provider without secrets",
        SESSION + '[providers.default]\ntype = "standard"\n',
        {"providers.default.secrets"},
        "insecure_no_signature",
    ),
    (
        "provider with an empty secrets list",
        SESSION + '[providers.default]\ntype = "standard"\nsecrets = []\n',
        {"providers.default.secrets"},
        "at least one secret",
    ),
    (
        "secret without whsec_ prefix",
        SESSION
        + '[providers.default]\ntype = "standard"\nsecrets = ["c2VjcmV0LXNlY3JldC1zZWNyZXQ="]\n',
        {"providers.default.secrets", "providers.default.secrets[0]"},
        "whsec_",
    ),
    (
        "second secret without whsec_ prefix",
        SESSION + f'[providers.default]\ntype = "standard"\nsecrets = ["{SECRET}", "plain"]\n',
        {"providers.default.secrets", "providers.default.secrets[1]"},
        "whsec_",
    ),
    (
        "whsec_ secret with too little key material",
        SESSION + '[providers.default]\ntype = "standard"\nsecrets = ["whsec_QUFB"]\n',
        {"providers.default.secrets", "providers.default.secrets[0]"},
        "16 bytes",
    ),
    (
        "secrets given as a string, not a list",
        SESSION + f'[providers.default]\ntype = "standard"\nsecrets = "{SECRET}"\n',
        {"providers.default.secrets"},
        "list",
    ),
    ("short session_secret", 'session_secret = "short"\n' + PROVIDER, {"session_secret"}, "32"),
    ("missing session_secret", PROVIDER, {"session_secret"}, "required"),
    (
        "trusted_proxies 0.0.0.0/0",
        SESSION + 'trusted_proxies = ["0.0.0.0/0"]\n' + PROVIDER,
        {"trusted_proxies"},
        "0.0.0.0/0",
    ),
    (
        "trusted_proxies ::/0",
        SESSION + 'trusted_proxies = ["::/0"]\n' + PROVIDER,
        {"trusted_proxies"},
        "::/0",
    ),
    (
        "trusted_proxies not an address",
        SESSION + 'trusted_proxies = ["nope"]\n' + PROVIDER,
        {"trusted_proxies"},
        "nope",
    ),
    ("invalid TOML", SESSION + "database_url = \n" + PROVIDER, {""}, "TOML"),
    (
        "postgresql database_url without a database",
        SESSION + 'database_url = "postgresql://u:p@db.example:5432/"\n' + PROVIDER,
        {"database_url"},
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
    ),
    (
        "mysql database_url",
        SESSION + 'database_url = "mysql://u:p@db.example/dlr"\n' + PROVIDER,
        {"database_url"},
        "sqlite:///PATH or postgresql://",
    ),
    (
        "upper-case provider name",
        SESSION + f'[providers.Acme]\ntype = "standard"\nsecrets = ["{SECRET}"]\n',
        {"providers.Acme"},
        "lower-case",
    ),
    (
        "provider that is not a table",
        SESSION + 'providers = {default = "standard"}\n',
        {"providers.default"},
        "dictionary",
    ),
    (
        "tolerance_seconds = 0",
        SESSION + PROVIDER + "tolerance_seconds = 0\n",
        {"providers.default.tolerance_seconds"},
        "greater than or equal to 1",
    ),
    (
        "max_body_bytes = 10",
        SESSION + "max_body_bytes = 10\n" + PROVIDER,
        {"max_body_bytes"},
        "greater than or equal to 1024",
    ),
    (
        "idempotency_ttl_seconds = 0",
        SESSION + "idempotency_ttl_seconds = 0\n" + PROVIDER,
        {"idempotency_ttl_seconds"},
        "greater than or equal to 1",
    ),
    (
        "send rate per_second = 0",
        SESSION + "send_rate_limits = {sender = {per_second = 0}}\n" + PROVIDER,
        {"send_rate_limits.sender.per_second"},
        "greater than 0",
    ),
    (
        "send rate burst = 0",
        SESSION + "[send_rate_limits]\nadmin = {per_second = 5, burst = 0}\n" + PROVIDER,
        {"send_rate_limits.admin.burst"},
        "greater than or equal to 1",
    ),
    (
        "send rate for a viewer",
        SESSION + "[send_rate_limits]\nviewer = {per_second = 5}\n" + PROVIDER,
        {"send_rate_limits.viewer"},
        "not a known key",
    ),
    (
        "send rate with an unknown key",
        SESSION + "[send_rate_limits]\nsender = {per_minute = 5}\n" + PROVIDER,
        {"send_rate_limits.sender.per_minute"},
        "not a known key",
    ),
    (
        "public_base_url not a URL",
        SESSION + 'public_base_url = "not a url"\n' + PROVIDER,
        {"public_base_url"},
        "URL",
    ),
    (
        "rate_per_second = 0",
        SESSION + PROVIDER + "rate_per_second = 0\n",
        {"providers.default.rate_per_second"},
        "greater than 0",
    ),
    (
        "api_key without api_base_url",
        SESSION + PROVIDER + 'api_key = "k"\n',
        {"providers.default.api_base_url"},
        "is required to send (api_key is set)",
    ),
    (
        "sender without credentials",
        SESSION + PROVIDER + 'sender = "ACME"\n',
        {"providers.default.api_base_url"},
        "is required to send (sender is set)",
    ),
    (
        "twilio rate without account_sid",
        SESSION
        + '[providers.tw]\ntype = "twilio"\nsecrets = ["9f3c2a7d51e84b0c96ad2f4e7b1c3d58"]\n'
        + "rate_per_second = 5\n",
        {"providers.tw.account_sid"},
        "is required to send (rate_per_second is set)",
    ),
    (
        "outbox give-up under a minute",
        SESSION + "[outbox]\ngive_up_seconds = 5\n" + PROVIDER,
        {"outbox.give_up_seconds"},
        "greater than or equal to 60",
    ),
    (
        "url_token too short to be a secret",
        SESSION + PROVIDER + 'url_token = "short"\n',
        {"providers.default.url_token"},
        "should match pattern",
    ),
    (
        "url_token with characters a URL would mangle",
        SESSION + PROVIDER + 'url_token = "' + "a/b?c&d=" * 4 + '"\n',
        {"providers.default.url_token"},
        "should match pattern",
    ),
    (
        "outbox unknown key",
        SESSION + "outbox = {lease_seconds = 5}\n" + PROVIDER,
        {"outbox.lease_seconds"},
        "not a known key",
    ),
]


@pytest.mark.parametrize(
    ("text", "keys", "problem"),
    [pytest.param(text, keys, problem, id=name) for name, text, keys, problem in BAD_CONFIGS],
)
def test_a_bad_config_is_refused_naming_file_key_and_problem(
    tmp_path: Path, text: str, keys: set[str], problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    error = caught.value
    message = str(error)
    assert error.source == str(path)
    assert message.startswith(str(path))
    assert error.key in keys
    if error.key:
        assert f": {error.key}: " in message
    assert error.problem.strip(), f"no problem stated in {message!r}"
    assert problem in error.problem
    assert message.endswith(error.problem)
    assert "\n" not in message
    assert SECRET not in message


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(path) in str(caught.value)
    assert "not found" in caught.value.problem


def test_a_send_rate_table_fills_unset_keys_with_the_defaults(tmp_path: Path) -> None:
    text = SESSION + "[send_rate_limits]\nsender = {burst = 5}\n" + PROVIDER
    limits = load(write(tmp_path, text)).settings.send_rate_limits
    assert (limits.sender.per_second, limits.sender.burst) == (10, 5)
    assert (limits.admin.per_second, limits.admin.burst) == (10, 20)


def test_a_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, SESSION + PROVIDER))
    settings = config.settings
    assert settings.database_url == "sqlite:///receiver.db"
    assert settings.max_body_bytes == 262144
    assert settings.trusted_proxies == []
    assert settings.idempotency_ttl_seconds == 86400
    for rate in (settings.send_rate_limits.sender, settings.send_rate_limits.admin):
        assert (rate.per_second, rate.burst) == (10, 20)
    assert settings.public_base_url is None
    assert list(config.providers) == ["default"]
    provider = config.providers["default"]
    assert provider.name == "default"
    assert provider.kind == "standard"
    assert provider.verifies
    assert provider.config.tolerance_seconds == 300
    assert config.insecure_providers == []
    assert config.sqlite_path == tmp_path / "receiver.db"


def test_every_listed_secret_is_kept_in_order_for_rotation(tmp_path: Path) -> None:
    second = new_whsec()
    text = SESSION + f'[providers.acme]\ntype = "standard"\nsecrets = ["{SECRET}", "{second}"]\n'
    config = load(write(tmp_path, text))
    assert config.providers["acme"].config.secrets == [SECRET, second]


def test_insecure_no_signature_without_secrets_loads_and_is_reported(tmp_path: Path) -> None:
    text = (
        SESSION + PROVIDER + '\n[providers.open]\ntype = "standard"\ninsecure_no_signature = true\n'
    )
    config = load(write(tmp_path, text))
    assert sorted(config.providers) == ["default", "open"]
    assert config.insecure_providers == ["open"]
    assert not config.providers["open"].verifies
    assert config.providers["default"].verifies


def test_insecure_no_signature_false_still_needs_secrets(tmp_path: Path) -> None:
    text = SESSION + '[providers.open]\ntype = "standard"\ninsecure_no_signature = false\n'
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    assert caught.value.key == "providers.open.secrets"


def test_a_relative_sqlite_path_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "receiver"
    folder.mkdir(parents=True)
    path = write(folder, SESSION + 'database_url = "sqlite:///data/dlr.db"\n' + PROVIDER)
    monkeypatch.chdir(tmp_path)  # not the config's folder
    assert load(path).sqlite_path == folder / "data" / "dlr.db"


def test_an_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "dlr.db"
    path = write(tmp_path, SESSION + f'database_url = "sqlite:///{target}"\n' + PROVIDER)
    assert target.is_absolute()
    assert load(path).sqlite_path == target


def test_trusted_proxies_are_parsed_as_networks(tmp_path: Path) -> None:
    text = SESSION + 'trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]\n' + PROVIDER
    proxies = load(write(tmp_path, text)).settings.trusted_proxies
    assert proxies == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    ]


def test_receiver_database_url_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "override" / "other.db"
    monkeypatch.setenv("RECEIVER_DATABASE_URL", f"sqlite:///{target}")
    config = load(write(tmp_path, SESSION + 'database_url = "sqlite:///file.db"\n' + PROVIDER))
    assert config.settings.database_url == f"sqlite:///{target}"
    assert config.sqlite_path == target


def test_an_unsupported_receiver_database_url_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIVER_DATABASE_URL", "mysql://u:p@db.example/dlr")
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, SESSION + PROVIDER))
    assert caught.value.key == "database_url"
    assert "p@" not in str(caught.value)  # the password is never echoed


def test_a_postgresql_url_from_the_environment_is_used_and_logged_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIVER_DATABASE_URL", "postgresql://dlr:s3cret@db.example:6543/dlr")
    config = load(write(tmp_path, SESSION + PROVIDER))
    assert not config.on_sqlite
    assert config.store_url == "postgresql://dlr:s3cret@db.example:6543/dlr"
    assert config.store_name == "postgresql://dlr@db.example:6543/dlr"
    with pytest.raises(UsageError):
        config.sqlite_path  # noqa: B018 - the property refuses


def test_resolve_path_prefers_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_path(None) == (Path("receiver.toml"), False)
    monkeypatch.setenv("RECEIVER_CONFIG", "/etc/receiver/env.toml")
    assert resolve_path(None) == (Path("/etc/receiver/env.toml"), True)
    assert resolve_path("flag.toml") == (Path("flag.toml"), True)


def test_the_generated_default_config_is_private_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "receiver.toml"
    write_default(path, host="127.0.0.1", port=8123)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load(path)
    assert list(config.providers) == ["default"]
    assert config.providers["default"].kind == "standard"
    assert config.providers["default"].config.secrets[0].startswith("whsec_")
    assert len(config.settings.session_secret) >= 32
    assert str(config.settings.public_base_url).startswith("http://127.0.0.1:8123")
    assert config.sqlite_path == tmp_path / "receiver.db"
    retention = config.settings.retention
    assert (retention.raw_requests_days, retention.messages_days) == (30, 90)
    # a second default never overwrites an existing file
    before = path.read_text()
    with pytest.raises(FileExistsError):
        write_default(path, host="127.0.0.1", port=8123)
    assert path.read_text() == before


def test_two_generated_configs_do_not_share_secrets(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    write_default(first, host="127.0.0.1", port=8000)
    write_default(second, host="127.0.0.1", port=8000)
    a, b = load(first), load(second)
    assert a.settings.session_secret != b.settings.session_secret
    assert a.providers["default"].config.secrets != b.providers["default"].config.secrets


@pytest.mark.parametrize("command", [["staff", "list"], ["serve", "--port", "1"]])
def test_the_cli_exits_2_with_one_stderr_line_for_a_bad_config(
    tmp_path: Path, command: list[str]
) -> None:
    path = write(tmp_path, SESSION + "max_body_bytes = 10\n" + PROVIDER)
    result = run_cli(*command, "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert "max_body_bytes" in lines[0]
    assert "1024" in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "receiver.db").exists()


def test_a_url_token_may_guard_any_provider_type(tmp_path: Path) -> None:
    token = "tok_" + "7" * 28
    config = load(write(tmp_path, SESSION + PROVIDER + f'url_token = "{token}"\n'))
    assert config.providers["default"].config.url_token == token


def test_a_type_whose_reports_are_unsigned_needs_a_token_or_addresses() -> None:
    class UnsignedConfig(ProviderConfig):
        signed_reports: ClassVar[bool] = False

    with pytest.raises(ValidationError) as refused:
        UnsignedConfig.model_validate({"type": "x"})
    assert "url_token: reports of this type are not signed" in str(refused.value)
    UnsignedConfig.model_validate({"type": "x", "url_token": "t" * 24})
    UnsignedConfig.model_validate({"type": "x", "allowed_ips": ["192.0.2.0/24"]})
    UnsignedConfig.model_validate({"type": "x", "insecure_no_signature": True})
