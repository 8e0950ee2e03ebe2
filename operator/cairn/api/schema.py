"""From pydantic's JSON Schema to a Kubernetes structural OpenAPI v3 schema.

Structural means: no $ref (every definition inlined), a type on every node, no anyOf but the
int-or-string one, and only keywords the API server knows. Pydantic's spelling of an optional
field (anyOf with null, default null) becomes a field that may simply be left out.
"""

import copy
import json
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]
DEFINITIONS = "$defs"
REF_PREFIX = f"#/{DEFINITIONS}/"
# Keywords of pydantic's output that mean nothing to the API server.
DROPPED = {"title"}


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of `model`, as its JSON (camelCase) form is validated."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop(DEFINITIONS, {})
    return _convert(schema, definitions)


def _convert(node: Schema, definitions: dict[str, Schema]) -> Schema:
    node = _inline(node, definitions)
    node = _drop_null(node, definitions)
    node = _describe_default(node)
    converted: Schema = {}
    for key, value in node.items():
        if key in DROPPED:
            continue
        if key == "description":
            # Docstrings wrap lines; `kubectl explain` wraps text itself.
            converted[key] = " ".join(value.split())
        elif key == "properties":
            converted[key] = {name: _convert(sub, definitions) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            converted[key] = _convert(value, definitions)
        elif key == "anyOf":
            converted[key] = [_convert(branch, definitions) for branch in value]
        else:
            converted[key] = copy.deepcopy(value)  # never share pydantic's objects
    return converted


def _describe_default(node: Schema) -> Schema:
    """`kubectl explain` shows descriptions but not defaults: say the default in words."""
    default = node.get("default")
    if default is None or isinstance(default, dict | list) or "description" not in node:
        return node
    text = default if isinstance(default, str) else json.dumps(default)
    return {**node, "description": f"{node['description']} Default: {text}."}


def _inline(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """Replace a $ref by its definition; keywords beside the $ref (a field's description) win."""
    while "$ref" in node:
        reference = node["$ref"]
        if not reference.startswith(REF_PREFIX):
            raise TypeError(f"a reference outside the schema's definitions: {reference}")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        node = {**definitions[reference.removeprefix(REF_PREFIX)], **siblings}
    return node


def _drop_null(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """`X | None = None` becomes X, optional: a null default is no default."""
    branches = node.get("anyOf")
    if not branches or {"type": "null"} not in branches:
        return node
    rest = [branch for branch in branches if branch != {"type": "null"}]
    if len(rest) != 1:
        raise TypeError(f"a union a structural schema cannot express: {branches}")
    siblings = {key: value for key, value in node.items() if key != "anyOf"}
    if siblings.get("default", ...) is None:
        del siblings["default"]
    return {**_inline(rest[0], definitions), **siblings}
