"""Hyperparameters from CAIRN_PARAMS (a JSON object), converted to the types the code expects.

The operator may pass every value as a string (Kubernetes maps are often string to string), so
`param("n_estimators", 100)` accepts 100, 100.0 and "100" alike and returns the int 100.
"""

import json
import math
from collections.abc import Callable
from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ParamError(ValueError):
    """A parameter that is missing, malformed, or not convertible to the type asked for."""


def parse_params(text: str | None) -> dict[str, Any]:
    """The parameters in CAIRN_PARAMS; an unset or empty variable means none."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParamError(f"CAIRN_PARAMS is not valid JSON ({error}): {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise ParamError(
            f'CAIRN_PARAMS must be a JSON object such as {{"lr": 0.1}}, not {text[:200]!r}'
        )
    return value


def convert_param(
    name: str, value: Any, default: Any, as_type: Callable[[Any], Any] | None = None
) -> Any:
    """`value` (None: absent) as the type of `default`, or `as_type` when the default is None."""
    if value is None:
        return default
    target = as_type or (type(default) if default is not None else None)
    if target is None:
        return value
    try:
        return _CONVERTERS.get(target, target)(value)
    except (TypeError, ValueError) as error:
        raise ParamError(
            f"parameter {name!r} = {value!r} is not a valid {getattr(target, '__name__', target)}"
            f": {error}"
        ) from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("write true or false")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return _to_int(float(text))  # "1e3" and "100.0" are whole numbers too
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("it is not a whole number")
        return int(value)
    return int(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return float(value)


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise TypeError("a JSON object or list is not a string")
    return value if isinstance(value, str) else json.dumps(value)


def _same_type(expected: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, expected):
            raise TypeError(f"got a {type(value).__name__}")
        return value

    return check


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
    list: _same_type(list),
    dict: _same_type(dict),
}
