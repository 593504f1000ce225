"""The suite's last check: no server log it produced holds a secret or a full phone number
(README "HTTP API").

``tests/conftest.py`` calls ``find_leaks`` on the session's temporary directory when the
session ends and fails the run if anything is found. A log is a ``server.log`` (what
``ReceiverServer`` writes) or the ``.out``/``.err`` of a server started by hand
(tests/test_cli.py). Each is searched for:

- full phone numbers: anything ``receiver.logs.mask_phone_numbers`` would still mask (an
  E.164 number, or 8-15 digits standing alone), so a line that bypassed the formatter,
  such as a raw traceback, is caught too;
- staff tokens (``rcv_...``) and Standard Webhooks secrets (``whsec_...``), whoever's;
- the secrets of the configs beside it (``receiver.toml`` in the log's folder or one
  below): ``session_secret``, each provider's ``secrets`` (and the password of a
  ``user:password`` one) and ``api_key``;
- console passwords the tests set (``remember_secret`` in tests/conftest.py).

Findings are printed with a redacted excerpt: the secret replaced, numbers masked.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.logs import mask_phone_numbers

LOG_PATTERNS = ("server.log", "*.out", "*.err")
SHORTEST_SECRET = 8
"""Shorter config values ("x", "user") are test fixtures that would match anything."""
_TOKENS = {
    "staff token": re.compile(r"rcv_[A-Za-z0-9_-]{20,}"),
    "webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
}


@dataclass(frozen=True)
class Leak:
    path: Path
    line: int
    kind: str
    excerpt: str
    """The line with the secret replaced and numbers masked, at most 200 characters."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


def logs_under(directory: Path) -> Iterator[Path]:
    for pattern in LOG_PATTERNS:
        yield from sorted(directory.rglob(pattern))


def config_secrets(config: dict[str, Any]) -> set[str]:
    """The secret values of one parsed ``receiver.toml``."""
    found = {str(config.get("session_secret", ""))}
    providers = config.get("providers", {})
    for table in providers.values() if isinstance(providers, dict) else ():
        for secret in table.get("secrets", []) if isinstance(table, dict) else ():
            found |= {str(secret), str(secret).partition(":")[2]}
        found.add(str(table.get("api_key") or "") if isinstance(table, dict) else "")
    return {secret for secret in found if len(secret) >= SHORTEST_SECRET}


def secrets_beside(log: Path) -> set[str]:
    """The secrets of the configs in the log's folder and the folders just below it."""
    found: set[str] = set()
    for config in [log.parent / "receiver.toml", *log.parent.glob("*/receiver.toml")]:
        try:
            found |= config_secrets(tomllib.loads(config.read_text()))
        except (OSError, tomllib.TOMLDecodeError):
            continue  # a test's deliberately broken config holds nothing a server used
    return found


def _excerpt(line: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        line = line.replace(secret, "[SECRET]")
    for pattern in _TOKENS.values():
        line = pattern.sub("[SECRET]", line)
    return mask_phone_numbers(line)[:200]


def leaks_in(log: Path, secrets: set[str]) -> Iterator[Leak]:
    """What ``log`` should not hold, line by line."""
    text = log.read_text(errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        kinds = [kind for kind, pattern in _TOKENS.items() if pattern.search(line)]
        kinds += ["configured secret or password"] if any(s in line for s in secrets) else []
        if mask_phone_numbers(line) != line:
            kinds.append("full phone number")
        for kind in kinds:
            yield Leak(log, number, kind, _excerpt(line, secrets))


def find_leaks(directory: Path, passwords: Iterable[str] = ()) -> list[Leak]:
    """Every leak in every log under ``directory``."""
    remembered = {p for p in passwords if len(p) >= SHORTEST_SECRET}
    return [
        leak
        for log in logs_under(directory)
        for leak in leaks_in(log, secrets_beside(log) | remembered)
    ]
