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

__all__ = ["PROVIDER_TYPES", "Provider"]
