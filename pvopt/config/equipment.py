"""`equipment:` — the loads, each validated by the model its `type` registered."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import PlainValidator, SerializeAsAny
from pydantic_core import PydanticCustomError

from machines.model import LoadSpec
from pvopt.kinds import LOAD_KINDS, EquipmentModel, load_kind


def _equipment(value: Any) -> EquipmentModel:
    """Validate one `equipment:` entry with the model its `type` registered (pvopt.kinds):
    the discriminated union, built from the registry at validation time so a kind registered
    after import counts, and an unregistered type is an error, never a guess."""
    if isinstance(value, EquipmentModel):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )
    tag = value.get("type")
    names = LOAD_KINDS.names()
    if tag is None:
        raise PydanticCustomError(
            "union_tag_not_found",
            "Unable to extract tag using discriminator 'type'",
            {"discriminator": "'type'"},
        )
    if not isinstance(tag, str) or tag not in names:
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag {tag!r} found using 'type' does not match any of the expected tags",
            {"discriminator": "'type'", "tag": str(tag), "expected_tags": ", ".join(names)},
        )
    return load_kind(tag).model.model_validate(value)


# Serialised as the entry's own model (masked_dump shows every field of its kind).
Equipment = SerializeAsAny[Annotated[EquipmentModel, PlainValidator(_equipment)]]


def load_spec(eq: EquipmentModel, load_id: int) -> LoadSpec:
    """The core's view of one validated equipment entry, as its registered kind builds it."""
    return load_kind(eq.type_name()).spec(eq, load_id)
