"""CEL validation rules (x-kubernetes-validations) declared beside the fields they guard.

The API server evaluates them, so bad input is refused with the rule's message before it reaches
the operator. `Matches` and `KeysMatch` also validate in Python, with the same message.
"""

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

VALIDATIONS = "x-kubernetes-validations"


def rule(
    expression: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One x-kubernetes-validations entry; `field_path` (".field") is where errors are reported."""
    entry = {"rule": expression, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def add_rules(schema: dict[str, Any], *rules: dict[str, str]) -> None:
    schema.setdefault(VALIDATIONS, []).extend(rules)


@dataclasses.dataclass(frozen=True)
class Matches:
    """A string must match `pattern`, anchored with ^ and $ (the same in RE2 and Python).

    Preferred to a plain `pattern` for fields people write: the API server then answers with
    `message` rather than the bare regular expression.
    """

    pattern: str
    message: str

    def __post_init__(self) -> None:
        # The pattern goes into a CEL raw string delimited by single quotes.
        assert "'" not in self.pattern, self.pattern
        assert self.pattern.startswith("^") and self.pattern.endswith("$"), self.pattern

    def expression(self) -> str:
        return f"self.matches(r'{self.pattern}')"

    def validate(self, value: Any) -> Any:
        if not re.fullmatch(self.pattern, value):
            raise ValueError(self.message)
        return value

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        add_rules(json_schema, rule(self.expression(), self.message))
        return json_schema


@dataclasses.dataclass(frozen=True)
class KeysMatch(Matches):
    """Every key of a map must match `pattern`: a structural schema has no propertyNames."""

    def expression(self) -> str:
        return f"self.all(key, key.matches(r'{self.pattern}'))"

    def validate(self, value: Any) -> Any:
        for key in value:
            super().validate(key)
        return value


def immutable_except(
    *mutable: str, message: str
) -> Callable[[dict[str, Any], type[BaseModel]], None]:
    """A `json_schema_extra` for a spec model: every field but `mutable` is fixed at creation.

    One transition rule per field, reported at that field, refusing a change, an addition and a
    removal: a rule on the field itself would miss the last two, because the API server evaluates
    a transition rule only where both the old and the new value exist. `mutable` holds Python
    field names; `message` is formatted with `field`, the field's path ("spec.image").
    """

    def add_immutability_rules(schema: dict[str, Any], model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            if name in mutable:
                continue
            key = field.alias or name
            always_set = field.is_required() or field.get_default() is not None
            expression = (
                f"self.{key} == oldSelf.{key}"
                if always_set
                else f"has(self.{key}) ? has(oldSelf.{key}) && self.{key} == oldSelf.{key}"
                f" : !has(oldSelf.{key})"
            )
            add_rules(
                schema,
                rule(
                    expression,
                    message.format(field=f"spec.{key}"),
                    field_path=f".{key}",
                    reason="FieldValueForbidden",
                ),
            )

    return add_immutability_rules


def object_rules(*rules: dict[str, str]) -> Callable[[dict[str, Any], type[BaseModel]], None]:
    """A `json_schema_extra` for a model: CEL rules on the object itself, across its fields
    (for example "exactly one of a or b")."""

    def add_object_rules(schema: dict[str, Any], model: type[BaseModel]) -> None:
        add_rules(schema, *rules)

    return add_object_rules
