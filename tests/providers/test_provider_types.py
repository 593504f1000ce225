"""What every provider type shares: its config model (``Provider[ConfigT]``) and the
field helpers of ``receiver.providers.fields``."""

from __future__ import annotations

from typing import Literal

import pytest

from receiver.providers import PROVIDER_TYPES
from receiver.providers.fields import MAX_ERROR_MESSAGE, blank_is_none, clipped_error
from receiver.providers.standard import StandardConfig, StandardProvider
from receiver.providers.twilio import TwilioConfig

SECRET = "whsec_" + "A" * 32


@pytest.mark.parametrize("kind", sorted(PROVIDER_TYPES))
def test_the_config_model_is_the_types_own(kind: str) -> None:
    """The type argument of ``Provider[...]`` is the model whose ``type`` is the kind."""
    model = PROVIDER_TYPES[kind].config_model
    assert model.model_fields["type"].annotation == Literal[kind]


@pytest.mark.parametrize("kind", sorted(set(PROVIDER_TYPES) - {"standard"}))
def test_a_type_refuses_another_types_config(kind: str) -> None:
    provider = PROVIDER_TYPES[kind]
    other = StandardConfig(type="standard", secrets=[SECRET])
    with pytest.raises(TypeError, match=f"needs a {provider.config_model.__name__}"):
        provider("p", other)


def test_a_types_config_is_the_one_it_was_given() -> None:
    config = StandardConfig(type="standard", secrets=[SECRET])
    assert StandardProvider("p", config).config is config
    with pytest.raises(TypeError, match="not TwilioConfig"):
        StandardProvider("p", TwilioConfig(type="twilio", secrets=["t" * 32]))


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (None, None),
        ("", None),
        ("carrier violation", "carrier violation"),
        ("x" * (MAX_ERROR_MESSAGE + 5), "x" * MAX_ERROR_MESSAGE),
    ],
)
def test_an_error_message_is_cut_never_refused(text: str | None, kept: str | None) -> None:
    assert clipped_error(text) == kept


@pytest.mark.parametrize(("value", "read"), [("", None), (" ", " "), ("0", "0"), (0, 0)])
def test_only_an_empty_value_is_absent(value: object, read: object) -> None:
    assert blank_is_none(value) == read
