"""Pydantic models built from values that are already what the model would hold (no validation pass)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def assembled(cls: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """An instance of ``cls`` holding ``values`` (every field, in the model's order, each of its field's type) with
    ``fields_set`` as the fields given: what pydantic's ``model_construct`` sets, without its per-field Python
    loop (a consumer or a re-evaluation builds 100,000 of them). The caller guarantees the values are valid."""
    instance = cls.__new__(cls)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", fields_set)
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance
