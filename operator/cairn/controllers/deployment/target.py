"""Which version a ModelDeployment should serve, and whether it may: pure, from the objects read.

A version is served only when its ModelVersion is Ready (validated and approved) and its
artifact can be mounted or downloaded; anything else is a Refusal whose reason and message say
why and what to do, and the version is never served.
"""

import dataclasses

from cairn.api import Model, ModelDeploymentSpec, ModelVersion, ModelVersionPhase
from cairn.api.conditions import find, is_true
from cairn.api.modeldeployment import ModelDeploymentReason as Reason
from cairn.registry.registration import version_name
from cairn.storage import InvalidArtifactURI, parse_artifact_uri


@dataclasses.dataclass(frozen=True)
class Target:
    """A version that may be served, with what the serving pods need of it."""

    model: str
    version: int
    artifact_uri: str
    digest: str
    # The Model's spec.sensitiveFeatures, never written to the prediction log. Not part of
    # which version this is: a change of them updates the pods, it is no new rollout.
    sensitive_features: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def name(self) -> str:
        return version_name(self.model, self.version)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why no version can be served: a CamelCase reason and a message for a person."""

    reason: Reason
    message: str


def wanted_version(spec: ModelDeploymentSpec, model: Model | None) -> int | Refusal:
    """The version number spec asks for: spec.version, or where the Model's alias points."""
    if model is None:
        return Refusal(
            Reason.MODEL_NOT_FOUND, f"Model {spec.model} does not exist; create it first"
        )
    if spec.version is not None:
        return spec.version
    alias = spec.alias or ""
    resolved = ((model.status and model.status.aliases) or {}).get(alias)
    if resolved is None:
        pinned = (model.spec.aliases or {}).get(alias)
        why = (
            f"it names version {pinned}, which is not Validated and Approved (see the Model's "
            "AliasesResolved condition)"
            if pinned is not None
            else f"set it with spec.aliases.{alias} on the Model"
        )
        return Refusal(Reason.ALIAS_NOT_RESOLVED, f"Model {spec.model} has no alias {alias}: {why}")
    return resolved


def _not_ready(version: ModelVersion) -> Refusal:
    name = version.name
    status = version.status
    phase = status.phase if status else None
    ready = find(status.conditions if status else None, "Ready")
    detail = ready.message if ready else ""
    if phase == ModelVersionPhase.PENDING_APPROVAL:
        message = f"{name} is PendingApproval; run `cairn approve {version.spec.model} "
        message += f"{version.spec.version}`"
    elif phase in (ModelVersionPhase.REJECTED, ModelVersionPhase.INVALID):
        message = f"{name} is {phase}: {detail}" if detail else f"{name} is {phase}"
    else:
        message = f"{name} is not validated yet"
    return Refusal(Reason.VERSION_NOT_READY, f"{message}; it is not served")


def resolve(
    spec: ModelDeploymentSpec, number: int, version: ModelVersion | None
) -> Target | Refusal:
    """The Target for version `number` of spec.model, or why it cannot be served."""
    name = version_name(spec.model, number)
    if version is None:
        return Refusal(Reason.VERSION_NOT_FOUND, f"ModelVersion {name} does not exist")
    if not is_true(version.status.conditions if version.status else None, "Ready"):
        return _not_ready(version)
    uri = version.spec.artifact.uri
    try:
        parsed = parse_artifact_uri(uri)
    except InvalidArtifactURI as error:
        return Refusal(Reason.UNSUPPORTED_ARTIFACT, f"{name}: {error}")
    if parsed.scheme not in ("pvc", "s3") or not parsed.path:
        return Refusal(
            Reason.UNSUPPORTED_ARTIFACT,
            f"{name}: artifact {uri} cannot be served; only pvc://<claim>/<path> (mounted) and "
            "s3://<bucket>/<prefix> (downloaded) artifacts are",
        )
    return Target(
        model=spec.model, version=number, artifact_uri=uri, digest=version.spec.artifact.digest
    )
