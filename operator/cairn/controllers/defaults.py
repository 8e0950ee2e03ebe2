"""Defaults that a platform team sets once per installation, read from the environment.

The Helm chart sets these variables from its values. They apply only where an object leaves the
field unset: the CRDs carry no default for these fields, because a schema default would be
written into every object by the API server and this one could never apply. Read on every use,
not at import, so that a test can change them with monkeypatch.
"""

import copy
import os
from typing import Any

from cairn.analysis import judge
from cairn.api.modeldeployment import DEFAULT_SERVER_IMAGE
from cairn.api.trainingrun import DEFAULT_IMAGE as DEFAULT_TRAINER_IMAGE

Body = dict[str, Any]


def trainer_image() -> str:
    """The image of a TrainingRun without spec.image (env CAIRN_TRAINER_IMAGE)."""
    return os.environ.get("CAIRN_TRAINER_IMAGE") or DEFAULT_TRAINER_IMAGE


def server_image() -> str:
    """The image of a ModelDeployment without spec.image (env CAIRN_SERVER_IMAGE)."""
    return os.environ.get("CAIRN_SERVER_IMAGE") or DEFAULT_SERVER_IMAGE


def _positive(variable: str, fallback: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return fallback
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{variable}={text!r}: must be a whole number of at least 1")
    return int(text)


def analysis() -> Body:
    """The analysis settings of a canary that leaves them unset (env CAIRN_ANALYSIS_INTERVAL,
    CAIRN_ANALYSIS_FAILURE_LIMIT, CAIRN_ANALYSIS_MIN_REQUESTS)."""
    interval = os.environ.get("CAIRN_ANALYSIS_INTERVAL") or judge.DEFAULT_INTERVAL
    try:
        judge.duration_seconds(interval)
    except ValueError as error:
        raise ValueError(f"CAIRN_ANALYSIS_INTERVAL: {error}") from None
    return {
        "interval": interval,
        "failureLimit": _positive("CAIRN_ANALYSIS_FAILURE_LIMIT", judge.DEFAULT_FAILURE_LIMIT),
        "minRequests": _positive("CAIRN_ANALYSIS_MIN_REQUESTS", judge.DEFAULT_MIN_REQUESTS),
    }


def with_analysis_defaults(spec: Body) -> Body:
    """A ModelDeployment's spec with the installation's analysis defaults where the canary's
    analysis leaves a setting unset (a copy; without analysis, the spec itself)."""
    given = ((spec.get("strategy") or {}).get("canary") or {}).get("analysis")
    if given is None:
        return spec
    filled = copy.deepcopy(spec)
    filled["strategy"]["canary"]["analysis"] = {**analysis(), **given}
    return filled
