import json
from typing import Any

import pytest

from cairn.training import ParamError, TrainingSession


def _session(params_json: str | None) -> TrainingSession:
    environ = {} if params_json is None else {"CAIRN_PARAMS": params_json}
    return TrainingSession(environ, finish_at_exit=False)


def test_params_are_the_json_object_and_empty_without_it() -> None:
    assert _session('{"lr": 0.1, "name": "x"}').params() == {"lr": 0.1, "name": "x"}
    assert _session(None).params() == {}
    assert _session("").params() == {}


@pytest.mark.parametrize(
    ("params_json", "message"),
    [("{lr: 0.1}", "CAIRN_PARAMS is not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_malformed_params_are_reported(params_json: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        _session(params_json).params()


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        (200, 100, 200),
        ("200", 100, 200),
        (200.0, 100, 200),
        ("1e3", 100, 1000),
        ("0.5", 0.25, 0.5),
        (1, 0.25, 1.0),
        ("true", False, True),
        ("No", True, False),
        (False, True, False),
        (3, "gini", "3"),
        ("entropy", "gini", "entropy"),
        ([1, 2], [], [1, 2]),
    ],
)
def test_a_param_takes_the_type_of_its_default(value: Any, default: Any, expected: Any) -> None:
    converted = _session(f'{{"p": {json.dumps(value)}}}').param("p", default)

    assert converted == expected
    assert type(converted) is type(expected)


def test_an_absent_param_is_its_default() -> None:
    session = _session('{"other": 1}')

    assert session.param("n_estimators", 100) == 100
    assert session.param("max_depth", None) is None
    assert session.param("max_depth", None, int) is None


def test_an_optional_param_is_converted_by_as_type() -> None:
    assert _session('{"max_depth": "4"}').param("max_depth", None, int) == 4
    assert _session('{"max_depth": "4"}').param("max_depth", None) == "4"


@pytest.mark.parametrize(
    ("value", "default", "message"),
    [
        ("2.5", 1, "'p' = '2.5' is not a valid int: it is not a whole number"),
        ("many", 1, "'p' = 'many' is not a valid int"),
        (True, 1, "a boolean is not a number"),
        ("maybe", False, "'p' = 'maybe' is not a valid bool: write true or false"),
        ({"a": 1}, "x", "a JSON object or list is not a string"),
        ("x", [], "'p' = 'x' is not a valid list: got a str"),
    ],
)
def test_unconvertible_params_name_the_param_and_the_type(
    value: Any, default: Any, message: str
) -> None:
    with pytest.raises(ParamError) as error:
        _session(f'{{"p": {json.dumps(value)}}}').param("p", default)

    assert message in str(error.value)
