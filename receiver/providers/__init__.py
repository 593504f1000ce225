"""Provider types, one module each, behind ``receiver.providers.base.Provider``.

Every module in this package that defines a ``Provider`` subclass with a ``kind``
registers that type: adding a provider is adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil

from receiver.providers.base import Provider


def _discover() -> dict[str, type[Provider]]:
    found: dict[str, type[Provider]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Provider)
                and value.__module__ == module.__name__
                and "kind" in vars(value)
            ):
                found[value.kind] = value
    return found


PROVIDER_TYPES: dict[str, type[Provider]] = _discover()


def explain_error(provider_type: str, code: str | None) -> str | None:
    """One plain sentence for an error code a provider of ``provider_type`` reported
    (``Provider.explain_error``), or None: no code, an unknown type, or a code with no
    documented meaning we know of."""
    provider = PROVIDER_TYPES.get(provider_type)
    if provider is None or code is None or not code.strip():
        return None
    return provider.explain_error(code.strip())


def error_label(provider_type: str) -> str:
    """The words that introduce a code of this provider type, e.g. ``Twilio``."""
    provider = PROVIDER_TYPES.get(provider_type)
    return provider.error_label if provider is not None else "code"


__all__ = ["PROVIDER_TYPES", "Provider", "error_label", "explain_error"]
