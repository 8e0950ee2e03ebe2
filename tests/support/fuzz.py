"""Objects a CRD's OpenAPI schema accepts, drawn by hypothesis: the schema's types, enums,
patterns, bounds and required fields are followed, so most of what is drawn passes the API
server's schema check and reaches its CEL rules and then the operator. Sizes are kept small (a
few items, short strings) so that hundreds of objects fit in a test."""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

Schema = Mapping[str, Any]
STRING_MAX = 24
ITEMS_MAX = 3
MAP_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
# Text the API server can take: any Unicode scalar value (no lone surrogates), short.
TEXT = st.characters(codec="utf-8")
# A CEL rule of the CRDs' generator (cairn.api.cel.Matches): the pattern a string must match.
MATCHES = re.compile(r"^self\.matches\(r'(.*)'\)$")
# A value of a field that keeps unknown fields (params, say): JSON scalars.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(TEXT, max_size=STRING_MAX),
)


def crd_spec_schema(crd: Path) -> Schema:
    """The openAPIV3Schema of `spec` in a generated CRD file (its first version)."""
    document = yaml.safe_load(crd.read_text())
    schema: Schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]  # type: ignore[no-any-return]


def _string(schema: Schema) -> st.SearchStrategy[str]:
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", STRING_MAX), STRING_MAX)
    anything = st.text(TEXT, min_size=low, max_size=max(low, high))
    patterns = [schema["pattern"]] if "pattern" in schema else []
    for validation in schema.get("x-kubernetes-validations") or []:
        found = MATCHES.match(validation.get("rule", ""))
        if found:
            patterns.append(found.group(1))
    if patterns:
        # Kubernetes patterns are RE2, which Python's re reads the same for these. Mostly
        # matching strings (which reach the operator), sometimes anything (which the API server
        # must refuse, naming the field).
        limit = schema.get("maxLength", 253)
        drawn = st.from_regex(patterns[0], fullmatch=True).filter(lambda s: low <= len(s) <= limit)
        return st.one_of(drawn, drawn, drawn, anything)
    if schema.get("format") == "date-time":
        return st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return anything


def _number(schema: Schema, integer: bool) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if integer:
        return st.integers(
            min_value=int(low) if low is not None else -(10**6),
            max_value=int(high) if high is not None else 10**6,
        )
    return st.floats(
        min_value=low if low is not None else -1e6,
        max_value=high if high is not None else 1e6,
        allow_nan=False,
        allow_infinity=False,
    )


def _object(schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    if not properties:
        values = (
            strategy(schema["additionalProperties"])
            if isinstance(schema.get("additionalProperties"), Mapping)
            else SCALARS
        )
        return st.dictionaries(MAP_KEYS, values, max_size=ITEMS_MAX)
    # In the schema's order, never a set's: a set of strings iterates in an order that changes
    # with each process's hash seed, and so would what one CAIRN_FUZZ_SEED draws.
    required = list(schema.get("required") or [])
    fixed = {name: strategy(properties[name]) for name in required if name in properties}
    optional = {name: strategy(sub) for name, sub in properties.items() if name not in required}
    return st.fixed_dictionaries(fixed, optional=optional)


def strategy(schema: Schema) -> st.SearchStrategy[Any]:
    """Values the OpenAPI schema (as in a CRD) accepts, ignoring its CEL rules."""
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(0, 1000), st.text(max_size=8))
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([strategy(sub) for sub in schema.get("anyOf") or schema["oneOf"]])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema)
    if kind == "array":
        items = strategy(schema.get("items") or {})
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3)))
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "boolean":
        return st.booleans()
    return SCALARS


def drawn(crd: Path, count: int, seeded: int) -> list[dict[str, Any]]:
    """`count` specs the CRD's schema accepts: the same ones for the same seed, in any process."""
    found: list[dict[str, Any]] = []

    @seed(seeded)
    @settings(
        max_examples=count,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy(crd_spec_schema(crd)))
    def collect(spec: dict[str, Any]) -> None:
        found.append(spec)

    collect()
    return found[:count]
