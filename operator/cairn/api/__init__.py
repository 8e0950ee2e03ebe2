"""Pydantic models of every Cairn kind: the single source of truth the CRDs are generated from.

Python attributes are snake_case; `to_dict()` and the CRDs spell them camelCase.
"""

from cairn.api.base import API_VERSION, GROUP, VERSION, ApiModel, Resource
from cairn.api.common import ArtifactRef, Condition, ConditionStatus, DatasetRef
from cairn.api.model import (
    Gate,
    GateOp,
    Model,
    ModelConditionType,
    ModelSpec,
    ModelStatus,
    Policy,
    Retention,
)
from cairn.api.modelversion import (
    Approval,
    ApprovalState,
    GateResult,
    ModelVersion,
    ModelVersionConditionType,
    ModelVersionPhase,
    ModelVersionSpec,
    ModelVersionStatus,
    Source,
)
from cairn.api.trainingrun import (
    CodeSource,
    ConfigMapCode,
    EnvVar,
    ImagePullPolicy,
    OutputSpec,
    ResourceRequirements,
    Toleration,
    TrainingRun,
    TrainingRunConditionType,
    TrainingRunPhase,
    TrainingRunSpec,
    TrainingRunStatus,
)

KINDS: tuple[type[Resource], ...] = (TrainingRun, Model, ModelVersion)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "ApiModel",
    "Approval",
    "ApprovalState",
    "ArtifactRef",
    "CodeSource",
    "Condition",
    "ConditionStatus",
    "ConfigMapCode",
    "DatasetRef",
    "EnvVar",
    "Gate",
    "GateOp",
    "GateResult",
    "ImagePullPolicy",
    "Model",
    "ModelConditionType",
    "ModelSpec",
    "ModelStatus",
    "ModelVersion",
    "ModelVersionConditionType",
    "ModelVersionPhase",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "OutputSpec",
    "Policy",
    "Resource",
    "ResourceRequirements",
    "Retention",
    "Source",
    "Toleration",
    "TrainingRun",
    "TrainingRunConditionType",
    "TrainingRunPhase",
    "TrainingRunSpec",
    "TrainingRunStatus",
]
