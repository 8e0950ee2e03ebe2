"""Defaults that a platform team sets once per installation, read from the environment.

The Helm chart sets these variables from its values. They apply only where an object leaves the
field unset: the CRDs carry no default for these fields, because a schema default would be
written into every object by the API server and this one could never apply. Read on every use,
not at import, so that a test can change them with monkeypatch.
"""

import os

from cairn.analysis.judge import duration_seconds
from cairn.api.common import DEFAULT_STORAGE_SECRET
from cairn.api.modeldeployment import (
    DEFAULT_ANALYSIS_INTERVAL,
    DEFAULT_FAILURE_LIMIT,
    DEFAULT_MIN_REQUESTS,
    DEFAULT_SERVER_IMAGE,
    AnalysisSettings,
    ModelDeploymentSpec,
)
from cairn.api.trainingrun import DEFAULT_IMAGE as DEFAULT_TRAINER_IMAGE


def trainer_image() -> str:
    """The image of a TrainingRun without spec.image (env CAIRN_TRAINER_IMAGE)."""
    return os.environ.get("CAIRN_TRAINER_IMAGE") or DEFAULT_TRAINER_IMAGE


def server_image() -> str:
    """The image of a ModelDeployment without spec.image (env CAIRN_SERVER_IMAGE)."""
    return os.environ.get("CAIRN_SERVER_IMAGE") or DEFAULT_SERVER_IMAGE


def storage_secret() -> str | None:
    """The Secret pods read object-store credentials from when their object names none, if the
    namespace has it (env CAIRN_STORAGE_SECRET; empty: none)."""
    configured = os.environ.get("CAIRN_STORAGE_SECRET")
    return DEFAULT_STORAGE_SECRET if configured is None else (configured or None)


def model_cache_dir() -> str | None:
    """The node directory serving pods cache downloaded models in, shared by the pods of the
    node (env CAIRN_MODEL_CACHE_DIR, writable by uid 1000 on every node). Unset or empty: no
    node cache, each pod keeps its own download in an emptyDir; the default, because a hostPath
    volume is what the baseline and restricted Pod Security Standards refuse."""
    return os.environ.get("CAIRN_MODEL_CACHE_DIR") or None


def _positive(variable: str, fallback: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return fallback
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{variable}={text!r}: must be a whole number of at least 1")
    return int(text)


def analysis() -> AnalysisSettings:
    """The analysis settings of a canary that leaves them unset (env CAIRN_ANALYSIS_INTERVAL,
    CAIRN_ANALYSIS_FAILURE_LIMIT, CAIRN_ANALYSIS_MIN_REQUESTS)."""
    interval = os.environ.get("CAIRN_ANALYSIS_INTERVAL") or DEFAULT_ANALYSIS_INTERVAL
    try:
        duration_seconds(interval)
    except ValueError as error:
        raise ValueError(f"CAIRN_ANALYSIS_INTERVAL: {error}") from None
    return AnalysisSettings(
        interval=interval,
        failure_limit=_positive("CAIRN_ANALYSIS_FAILURE_LIMIT", DEFAULT_FAILURE_LIMIT),
        min_requests=_positive("CAIRN_ANALYSIS_MIN_REQUESTS", DEFAULT_MIN_REQUESTS),
    )


def with_analysis_defaults(spec: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """A ModelDeployment's spec with the installation's analysis defaults where the canary's
    analysis leaves a setting unset (a copy; without analysis, the spec itself)."""
    canary = spec.strategy.canary if spec.strategy else None
    if canary is None or canary.analysis is None or spec.strategy is None:
        return spec
    given, installed = canary.analysis, analysis()
    filled = given.model_copy(
        update={
            "interval": given.interval or installed.interval,
            "failure_limit": given.failure_limit or installed.failure_limit,
            "min_requests": given.min_requests or installed.min_requests,
        }
    )
    strategy = spec.strategy.model_copy(
        update={"canary": canary.model_copy(update={"analysis": filled})}
    )
    return spec.model_copy(update={"strategy": strategy})


def settings_of(spec: ModelDeploymentSpec) -> AnalysisSettings | None:
    """The analysis settings a filled spec (with_analysis_defaults) runs with, for status."""
    canary = spec.strategy.canary if spec.strategy else None
    given = canary.analysis if canary else None
    if given is None or given.interval is None:
        return None
    return AnalysisSettings(
        interval=given.interval,
        failure_limit=given.failure_limit or DEFAULT_FAILURE_LIMIT,
        min_requests=given.min_requests or DEFAULT_MIN_REQUESTS,
    )
