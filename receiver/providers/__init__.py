"""Provider types, one module each, behind ``receiver.providers.base.Provider``."""

from __future__ import annotations

from receiver.providers.base import Provider
from receiver.providers.standard import StandardProvider

PROVIDER_TYPES: dict[str, type[Provider]] = {cls.kind: cls for cls in (StandardProvider,)}

__all__ = ["PROVIDER_TYPES", "Provider"]
