import math
from typing import Any

import numpy as np
import pytest

from cairn.api.common import METRIC_NAME_MAX
from cairn.training import MetricError, TrainingSession
from cairn.training.metrics import MAX_NAME_LENGTH


@pytest.fixture
def session() -> TrainingSession:
    return TrainingSession({}, finish_at_exit=False)


def test_metrics_are_recorded_as_floats_in_order(session: TrainingSession) -> None:
    session.log_metric("accuracy", np.float64(0.97))
    session.log_metrics({"val/loss": 1, "f1_macro": np.float32(0.5)})
    session.log_metric("accuracy", 0.98)  # a second value replaces the first

    assert session.metrics == {"accuracy": 0.98, "val/loss": 1.0, "f1_macro": 0.5}
    assert all(type(value) is float for value in session.metrics.values())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("accuracy", math.nan, "metric 'accuracy' = nan is not finite"),
        ("loss", -math.inf, "metric 'loss' = -inf is not finite"),
        ("accuracy", "0.97", "metric 'accuracy' = '0.97' is not a number: log an int or a float"),
        ("converged", True, "(not a bool)"),
        ("accuracy", None, "(not a NoneType)"),
        ("accuracy", np.array([0.9, 0.8]), "(not a ndarray)"),
        ("", 1.0, "metric name '' is not valid"),
        ("9lives", 1.0, "start with a letter or '_'"),
        ("top 5", 1.0, "metric name 'top 5' is not valid"),
        ("a" * (MAX_NAME_LENGTH + 1), 1.0, f"at most {MAX_NAME_LENGTH} characters"),
    ],
)
def test_invalid_metrics_are_refused_with_the_reason(
    session: TrainingSession, name: str, value: Any, message: str
) -> None:
    with pytest.raises(MetricError) as error:
        session.log_metric(name, value)

    assert message in str(error.value)
    assert session.metrics == {}


def test_log_metrics_records_nothing_when_one_is_invalid(session: TrainingSession) -> None:
    with pytest.raises(MetricError, match="'bad'"):
        session.log_metrics({"good": 1.0, "bad": math.inf})

    assert session.metrics == {}


def test_the_name_limit_is_the_apis() -> None:
    assert MAX_NAME_LENGTH == METRIC_NAME_MAX
