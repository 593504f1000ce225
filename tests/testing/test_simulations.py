"""Every provider type's ``Simulation`` (``receiver.testing.base``): registered, and its
messages verify and parse with the real provider, one report per word of the journey."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.core.reports import Report
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import InboundRequest, Provider
from receiver.testing import telnyx_public_key
from receiver.testing.base import Context, Journey, Simulation, SimulationError, simulations

PUBLIC_BASE_URL = "https://dlr.example.com"
SENT_AT = datetime(2026, 11, 20, 8, tzinfo=UTC)
TELNYX_KEY = Ed25519PrivateKey.generate()
TABLES: dict[str, dict[str, Any]] = {
    "standard": {"secrets": ["whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"]},
    "twilio": {"secrets": ["a" * 32]},
    "vonage": {"secrets": ["vonage-signature-secret"], "signature_method": "sha256"},
    "plivo": {"secrets": ["plivo-auth-token"]},
    "telnyx": {"public_key": telnyx_public_key(TELNYX_KEY)},
    "sinch": {"auth": "hmac", "secrets": ["sinch-secret"]},
    "infobip": {"secrets": ["infobip:s3cret-pass"]},
    "bird": {"secrets": ["bird-signing-key"]},
    "jasmin": {"secrets": ["jasmin:s3cret-pass"]},
    "futuresms": {"url_token": "f" * 32},
    "relayos": {"url_token": "r" * 32},
    "smstools": {"url_token": "s" * 32},
    "txtly": {"secrets": ["whsec_" + "1" * 32]},
    "sendcomms": {"secrets": ["sendcomms-secret"]},
}
"""A verifying configuration of every type."""


def provider_of(kind: str) -> Provider:
    cls = PROVIDER_TYPES[kind]
    return cls(kind, cls.config_model.model_validate({"type": kind, **TABLES[kind]}))


def context(provider: Provider) -> Context:
    secrets = provider.config.secrets
    return Context(provider, secrets[0] if secrets else None, PUBLIC_BASE_URL, TELNYX_KEY)


def journeys() -> list[tuple[str, Journey]]:
    return [(kind, journey) for kind, sim in simulations().items() for journey in sim.journeys]


def test_every_provider_type_is_simulated_by_its_testing_module() -> None:
    assert set(simulations()) == set(PROVIDER_TYPES)
    for kind, simulation in simulations().items():
        assert simulation.kind == kind
        assert type(simulation).__module__ == f"receiver.testing.{kind}"
        assert simulation.journeys, kind
        assert all(journey.weight > 0 and journey.words for journey in simulation.journeys)


def test_every_type_has_a_verifying_configuration_here() -> None:
    assert set(TABLES) == set(PROVIDER_TYPES)


@pytest.mark.parametrize(
    ("kind", "journey"), journeys(), ids=lambda v: v if isinstance(v, str) else "-".join(v.words)
)
def test_a_journeys_requests_verify_and_parse_as_its_words(kind: str, journey: Journey) -> None:
    simulation = simulations()[kind]
    provider = provider_of(kind)
    builds = simulation.message(random.Random(7), context(provider), 3, journey, SENT_AT)
    reports: list[Report] = []
    for build in builds:
        inbound = InboundRequest.captured(build(), PUBLIC_BASE_URL, SENT_AT)
        provider.verify(inbound, time.time())
        reports += provider.parse(inbound)
    assert len(reports) == len(journey.words)
    assert len({report.provider_message_id for report in reports}) == 1
    assert all(report.status is not None for report in reports), reports
    times = [report.occurred_at for report in reports]
    assert times == sorted(times) and times[0] >= SENT_AT
    if journey.errors:
        last = reports[-1]
        codes = {code for code, _ in journey.errors if code}
        details = {detail for _, detail in journey.errors}
        assert last.error_code in codes or last.error_message in details, last


@pytest.mark.parametrize("kind", sorted(PROVIDER_TYPES))
def test_the_same_seed_makes_the_same_reports(kind: str) -> None:
    simulation = simulations()[kind]
    provider = provider_of(kind)

    def parsed(seed: int) -> list[Report]:
        rng = random.Random(seed)
        reports: list[Report] = []
        for index, journey in enumerate(simulation.journeys):
            for build in simulation.message(rng, context(provider), index, journey, SENT_AT):
                reports += provider.parse(
                    InboundRequest.captured(build(), PUBLIC_BASE_URL, SENT_AT)
                )
        return reports

    assert parsed(5) == parsed(5)
    assert parsed(5) != parsed(6)


def test_a_type_signed_with_a_configured_secret_needs_no_private_key() -> None:
    for kind in sorted(set(PROVIDER_TYPES) - {"telnyx"}):
        assert simulations()[kind].private_key(None, provider_of(kind)) is None, kind


def pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_telnyx_is_signed_with_the_private_key_of_its_configured_public_key(
    tmp_path: Path,
) -> None:
    telnyx: Simulation = simulations()["telnyx"]
    provider = provider_of("telnyx")
    with pytest.raises(SimulationError, match="pass --telnyx-private-key FILE"):
        telnyx.private_key(None, provider)
    missing = tmp_path / "missing.pem"
    with pytest.raises(SimulationError, match="No such file"):
        telnyx.private_key(str(missing), provider)
    other = tmp_path / "other.pem"
    other.write_bytes(pem(Ed25519PrivateKey.generate()))
    with pytest.raises(SimulationError, match=r"providers\.telnyx\.public_key"):
        telnyx.private_key(str(other), provider)
    ours = tmp_path / "ours.pem"
    ours.write_bytes(pem(TELNYX_KEY))
    key = telnyx.private_key(str(ours), provider)
    assert key is not None
    assert telnyx_public_key(key) == telnyx_public_key(TELNYX_KEY)
