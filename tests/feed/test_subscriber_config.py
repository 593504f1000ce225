"""``[subscribers.NAME]`` in the config file: what is accepted, and each refusal is one
ConfigError naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import new_whsec

from receiver.config import load
from receiver.core.status import Status
from receiver.errors import ConfigError

SESSION = 'session_secret = "' + "s" * 40 + '"\n'
PROVIDER = f'[providers.acme]\ntype = "standard"\nsecrets = ["{new_whsec()}"]\n'
SECRET = new_whsec()


def config(tmp_path: Path, subscriber: str, name: str = "orders") -> Path:
    path = tmp_path / "receiver.toml"
    path.write_text(SESSION + PROVIDER + f"[subscribers.{name}]\n" + subscriber, encoding="utf-8")
    return path


def test_a_subscriber_with_filters_and_defaults(tmp_path: Path) -> None:
    loaded = load(
        config(
            tmp_path,
            f'url = "https://orders.internal/sms-status"\nsecrets = ["{SECRET}", "{new_whsec()}"]\n'
            'providers = ["acme"]\nstatuses = ["delivered", "failed"]\nclients = ["orders-api"]\n',
        )
    )
    orders = loaded.settings.subscribers["orders"]
    assert str(orders.url) == "https://orders.internal/sms-status"
    assert orders.statuses == [Status.DELIVERED, Status.FAILED]
    assert (orders.retry_horizon_seconds, orders.concurrency) == (86400, 16)


@pytest.mark.parametrize(
    ("subscriber", "key", "problem"),
    [
        (
            'url = "http://orders.internal/x"\nsecrets = ["{s}"]\n',
            "subscribers.orders.url",
            "https",
        ),
        (
            'url = "https://o.example/x"\nsecrets = ["nope"]\n',
            "subscribers.orders.secrets",
            "whsec_",
        ),
        ('url = "https://o.example/x"\nsecrets = []\n', "subscribers.orders.secrets", ""),
        ('secrets = ["{s}"]\n', "subscribers.orders.url", "required"),
        (
            'url = "https://o.example/x"\nsecrets = ["{s}"]\nproviders = ["other"]\n',
            "subscribers.orders.providers",
            "not a configured provider",
        ),
        (
            'url = "https://o.example/x"\nsecrets = ["{s}"]\nstatuses = ["arrived"]\n',
            "subscribers.orders.statuses",
            "",
        ),
        (
            'url = "https://o.example/x"\nsecrets = ["{s}"]\ncolour = "blue"\n',
            "subscribers.orders.colour",
            "not a known key",
        ),
        (
            'url = "https://o.example/x"\nsecrets = ["{s}"]\nretry_horizon_seconds = 0\n',
            "subscribers.orders.retry_horizon_seconds",
            "",
        ),
    ],
)
def test_a_bad_subscriber_is_refused_naming_the_key(
    tmp_path: Path, subscriber: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(config(tmp_path, subscriber.replace("{s}", SECRET)))
    assert str(refused.value).startswith(f"{tmp_path / 'receiver.toml'}: {key}")
    assert problem in str(refused.value)


def test_plain_http_is_allowed_on_loopback_or_when_asked_for(tmp_path: Path) -> None:
    loaded = load(config(tmp_path, f'url = "http://127.0.0.1:9/x"\nsecrets = ["{SECRET}"]\n'))
    assert loaded.settings.subscribers["orders"].url.host == "127.0.0.1"
    text = f'url = "http://orders.internal/x"\nsecrets = ["{SECRET}"]\ninsecure_http = true\n'
    assert load(config(tmp_path, text)).settings.subscribers["orders"].insecure_http


def test_a_subscriber_name_must_be_a_slug(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"subscribers\.Orders"):
        load(config(tmp_path, f'url = "https://o.example/x"\nsecrets = ["{SECRET}"]\n', "Orders"))
