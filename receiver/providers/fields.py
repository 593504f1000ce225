"""Field types and validators that several provider types' payload models share."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Word = Annotated[str, Field(min_length=1, max_length=64)]
"""A provider's status or event word (``delivered``, ``sms.failed``)."""

MAX_ERROR_MESSAGE = 1000
"""The longest error message we keep: a provider's longer text is cut, never refused."""


def clipped_error(text: str | None) -> str | None:
    """An error message as we keep it: cut to ``MAX_ERROR_MESSAGE``; None when empty."""
    return text[:MAX_ERROR_MESSAGE] if text else None


def blank_is_none(value: object) -> object:
    """A ``mode="before"`` validator: an empty value means the field is absent."""
    return None if value == "" else value
