"""Validation of logged metrics: the operator copies them into status and compares them in gates."""

import math
import numbers
import re

MAX_NAME_LENGTH = 128  # cairn.api's limit on metric names
# Letters first, then letters, digits and _ . / - (as in "val/loss"): names that read well in
# kubectl output, gate expressions and Prometheus labels.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")


class MetricError(ValueError):
    """A metric name or value that cannot be recorded."""


def checked_metric(name: object, value: object) -> tuple[str, float]:
    """(name, value as a float), once the name is valid and the value a finite real number."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise MetricError(
            f"metric name {name!r} is not valid: start with a letter or '_', then letters, "
            f"digits and _ . / - (at most {MAX_NAME_LENGTH} characters)"
        )
    # bool is an int to Python, but True is never a measurement.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MetricError(
            f"metric {name!r} = {value!r} is not a number: log an int or a float "
            f"(not a {type(value).__name__})"
        )
    number = float(value)
    if not math.isfinite(number):
        raise MetricError(f"metric {name!r} = {number} is not finite: log a finite number")
    return name, number
