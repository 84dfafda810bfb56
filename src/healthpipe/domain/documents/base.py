"""The base of every document passed between stages: JSON in, the same JSON bytes out.

A document keeps the keys it was given, in its fields' declared order, and nothing else:
`as_json()` dumps only the fields that were set (`exclude_unset`), so a manifest of a rejected
file has no `columns`, an episode without a blood-pressure pair has no `worst_systolic_bp`,
and a document read from today's store is written back byte for byte. Unknown keys are kept
(`extra="allow"`, written after the known ones) so a newer writer never loses data to an older
reader. Numbers that may be whole or fractional are `Number` (`int | float`): pydantic keeps
`172` an int and `172.0` a float, as `json.dumps` wrote them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

Number = int | float
Counts = dict[str, int]
JsonObject = dict[str, JsonValue]


class Document(BaseModel):
    """A JSON object with typed fields; see the module docstring for the round-trip rules."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def model_post_init(self, context: Any, /) -> None:
        # a document always says which version it is, even when built with the default
        if "schema_version" in type(self).model_fields:
            self.__pydantic_fields_set__.add("schema_version")

    def as_json(self) -> JsonObject:
        """The JSON object: set fields in declared order, then unknown keys."""
        dumped: JsonObject = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return dumped

    def dumps(self, **options: Any) -> str:
        """`json.dumps` of `as_json()`; `options` as for `json.dumps` (indent, separators)."""
        return json.dumps(self.as_json(), **options)


class Complete(Document):
    """A document whose every field is always written, defaults included."""

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self.__pydantic_fields_set__.update(type(self).model_fields)
