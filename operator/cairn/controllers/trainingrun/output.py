"""Where a run's artifact is written: spec.output.uri, or a default on the artifacts claim."""

from cairn.api import TrainingRun
from cairn.api.trainingrun import DEFAULT_ARTIFACTS_CLAIM
from cairn.storage import InvalidArtifactURI, parse_artifact_uri


def default_uri(run: TrainingRun) -> str:
    return f"pvc://{DEFAULT_ARTIFACTS_CLAIM}/{run.spec.model}/{run.name}"


def output_uri(run: TrainingRun) -> str:
    given = run.spec.output.uri if run.spec.output else None
    return given or default_uri(run)


def output_claim(run: TrainingRun) -> str | None:
    """The PersistentVolumeClaim the run writes to, None when it writes elsewhere."""
    try:
        parsed = parse_artifact_uri(output_uri(run))
    except InvalidArtifactURI:
        return None
    return parsed.claim if parsed.scheme == "pvc" else None
