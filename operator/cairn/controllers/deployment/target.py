"""Which version a ModelDeployment should serve, and whether it may: pure, from the objects read.

A version is served only when its ModelVersion is Ready (validated and approved) and its
artifact can be mounted; anything else is a Refusal whose reason and message say why and what
to do, and the version is never served.
"""

import dataclasses
from typing import Any

from cairn.controllers.conditions import is_true
from cairn.storage import InvalidArtifactURI, parse_artifact_uri

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Target:
    """A version that may be served, with what the serving pods need of it."""

    model: str
    version: int
    artifact_uri: str
    digest: str

    @property
    def name(self) -> str:
        return version_name(self.model, self.version)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why no version can be served: a CamelCase reason and a message for a person."""

    reason: str
    message: str


def version_name(model: str, version: int) -> str:
    """The ModelVersion's name: the registry names version N of a model <model>-v<N>."""
    return f"{model}-v{version}"


def wanted_version(spec: Body, model: Body | None) -> int | Refusal:
    """The version number spec asks for: spec.version, or where the Model's alias points."""
    name = spec["model"]
    if model is None:
        return Refusal("ModelNotFound", f"Model {name} does not exist; create it first")
    if spec.get("version") is not None:
        return int(spec["version"])
    alias = spec.get("alias")
    resolved = ((model.get("status") or {}).get("aliases") or {}).get(alias)
    if resolved is None:
        pinned = ((model.get("spec") or {}).get("aliases") or {}).get(alias)
        why = (
            f"it names version {pinned}, which is not Validated and Approved (see the Model's "
            "AliasesResolved condition)"
            if pinned is not None
            else f"set it with spec.aliases.{alias} on the Model"
        )
        return Refusal("AliasNotResolved", f"Model {name} has no alias {alias}: {why}")
    return int(resolved)


def _not_ready(model: str, version: int, status: Body) -> Refusal:
    name = version_name(model, version)
    phase = status.get("phase")
    conditions = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    detail = (ready or {}).get("message") or ""
    if phase == "PendingApproval":
        message = f"{name} is PendingApproval; run `cairn approve {model} {version}`"
    elif phase in ("Rejected", "Invalid"):
        message = f"{name} is {phase}: {detail}" if detail else f"{name} is {phase}"
    else:
        message = f"{name} is not validated yet"
    return Refusal("VersionNotReady", f"{message}; it is not served")


def resolve(spec: Body, number: int, version: Body | None) -> Target | Refusal:
    """The Target for version `number` of spec.model, or why it cannot be served."""
    model = spec["model"]
    name = version_name(model, number)
    if version is None:
        return Refusal("VersionNotFound", f"ModelVersion {name} does not exist")
    status = version.get("status") or {}
    if not is_true(status.get("conditions"), "Ready"):
        return _not_ready(model, number, status)
    artifact = version["spec"]["artifact"]
    uri = artifact["uri"]
    try:
        parsed = parse_artifact_uri(uri)
    except InvalidArtifactURI as error:
        return Refusal("UnsupportedArtifact", f"{name}: {error}")
    if parsed.scheme != "pvc" or not parsed.path:
        return Refusal(
            "UnsupportedArtifact",
            f"{name}: artifact {uri} cannot be mounted into serving pods; only "
            "pvc://<claim>/<path> artifacts are served",
        )
    return Target(model=model, version=number, artifact_uri=uri, digest=artifact["digest"])
