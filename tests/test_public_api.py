"""The public names users' integration tests import: pinned, so removing one is deliberate."""

from __future__ import annotations

import receiver.testing
from receiver.providers import PROVIDER_TYPES


def test_every_provider_type_has_a_request_builder_in_receiver_testing():
    for kind in PROVIDER_TYPES:
        builder = getattr(receiver.testing, f"{kind}_request", None)
        assert callable(builder), f"receiver.testing has no builder for {kind}"


def test_receiver_testing_exports_exactly_its_all():
    # Not identifiers: the helpers pytest's assertion rewriting adds to the modules of
    # an installed plugin's distribution (receiver is one, through its pytest11 entry).
    exported = {name for name in dir(receiver.testing) if name.isidentifier()}
    exported -= {name for name in exported if name.startswith("_")}
    modules = {"base", "fake_provider", "fake_server", "pytest_plugin", "subscriber"}
    modules |= set(PROVIDER_TYPES)
    modules |= {f"fake_{kind}" for kind in PROVIDER_TYPES}  # a type's fake API server
    modules.add("fake_status")  # the fake status APIs of the types that can look up
    assert exported - modules == set(receiver.testing.__all__)


def test_the_registered_provider_types():
    assert set(PROVIDER_TYPES) >= {
        "standard",
        "twilio",
        "vonage",
        "plivo",
        "telnyx",
        "sinch",
        "infobip",
        "bird",
        "jasmin",
        "futuresms",
        "relayos",
        "smstools",
    }
