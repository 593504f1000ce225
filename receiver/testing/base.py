"""What the provider testing modules share: the request every builder returns, and the
``Simulation`` interface through which ``receiver simulate`` imitates a provider type.

Each type's testing module (``receiver.testing.<type>``) defines one ``Simulation``
subclass with that ``kind``: its ``journeys`` (the words it reports for a message, in
order, with its error codes), how long it waits after which words, and ``message``,
which turns one journey into that message's request factories (built with the module's
own signed-request builders). ``simulations()`` finds them, so a new provider type is
simulated by adding its testing module's subclass.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import Provider, WebhookRequest

SignedRequest = WebhookRequest
"""A ready-to-send webhook request (the name the builders' users know)."""

Build = Callable[[], WebhookRequest]
"""Builds one report's request afresh (signed at call time)."""


@dataclass(frozen=True)
class Step:
    """One status report of one message: the provider's word, its error, when."""

    word: str
    at: datetime
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Journey:
    """A message's life in one provider's words: ``words`` in order, the last one
    possibly failing with one of ``errors`` (code, description)."""

    weight: int
    words: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()


def journey(weight: int, words: str, *errors: tuple[str, str]) -> Journey:
    """A ``Journey`` from its space-separated ``words``."""
    return Journey(weight, tuple(words.split()), errors)


@dataclass
class Context:
    """What every message maker needs: the provider, its secret, the signed base URL and,
    for a type that signs with its own private key, that key."""

    provider: Provider
    secret: str | None
    public_base_url: str
    private_key: Ed25519PrivateKey | None = None

    @property
    def name(self) -> str:
        return self.provider.name


class SimulationError(ValueError):
    """The simulation cannot run as asked (a usage error of ``receiver simulate``)."""


class Simulation(ABC):
    """One provider type's simulated messages."""

    kind: ClassVar[str]
    journeys: ClassVar[tuple[Journey, ...]]
    """The kinds of messages, each in proportion to its weight."""
    slow: ClassVar[frozenset[str]] = frozenset()
    """Words after which a message waits long (a carrier's verdict); others follow quickly."""
    expiring: ClassVar[frozenset[str]] = frozenset()
    """Words that come hours after the one before (a validity period ran out)."""
    placeholder_secret: ClassVar[str | None] = None
    """A stand-in secret for a provider with ``insecure_no_signature`` and no secrets."""

    def steps(self, rng: random.Random, journey: Journey, sent_at: datetime) -> list[Step]:
        """Increasing provider timestamps for ``journey``'s words, starting at ``sent_at``."""
        steps = []
        moment = sent_at
        error = rng.choice(journey.errors) if journey.errors else None
        for index, word in enumerate(journey.words):
            if index:
                if word in self.expiring:
                    moment += timedelta(hours=rng.uniform(4, 48))
                elif word in self.slow:
                    moment += timedelta(seconds=rng.uniform(2, 90))
                else:
                    moment += timedelta(milliseconds=rng.randint(120, 4000))
            last = index == len(journey.words) - 1
            code, detail = error if (last and error) else (None, None)
            at = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            steps.append(Step(word, at, code, detail))
        return steps

    @abstractmethod
    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        """Message ``index``'s reports along ``journey`` (sent at ``sent_at``), as request
        factories in the provider's order. Everything but signatures comes from ``rng``."""

    def private_key(self, path: str | None, provider: Provider) -> Ed25519PrivateKey | None:
        """The private key a type that signs with its own key needs, read from ``path``
        (``--telnyx-private-key``); ``SimulationError`` when it is missing or unusable.
        Types signed with a configured secret need none."""
        return None


@functools.cache
def simulations() -> Mapping[str, Simulation]:
    """Every provider type that can be simulated, by type: the ``Simulation`` subclass
    its testing module ``receiver.testing.<type>`` defines."""
    found: dict[str, Simulation] = {}
    for kind in PROVIDER_TYPES:
        name = f"{__package__}.{kind}"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Simulation)
                and value.__module__ == name
                and vars(value).get("kind") == kind
            ):
                found[kind] = value()
    return found


def random_uuid(rng: random.Random) -> str:
    """A version 4 UUID drawn from ``rng``."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def random_hex(rng: random.Random, digits: int) -> str:
    """``digits`` lowercase hex digits drawn from ``rng``."""
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def random_phone(rng: random.Random, country: str = "1") -> str:
    """A plausible mobile number, digits only (no ``+``)."""
    if country == "1":
        return f"1{rng.choice(['201', '415', '646', '917'])}555{rng.randint(0, 9999):04d}"
    return f"{country}{rng.randint(600000000, 799999999)}"


ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32, the alphabet of ULIDs."""


__all__ = [
    "ULID_ALPHABET",
    "Build",
    "Context",
    "Journey",
    "SignedRequest",
    "Simulation",
    "SimulationError",
    "Step",
    "journey",
    "random_hex",
    "random_phone",
    "random_uuid",
    "simulations",
]
