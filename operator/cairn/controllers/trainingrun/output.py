"""Where a run's artifact is written: spec.output.uri, or a default on the artifacts claim."""

from cairn.api import TrainingRun
from cairn.api.trainingrun import DEFAULT_ARTIFACTS_CLAIM
from cairn.storage import InvalidArtifactURI, PodMount, parse_artifact_uri, pvc_mount

ARTIFACTS_VOLUME = "artifacts"
ARTIFACTS_MOUNT = "/cairn/artifacts"


class InvalidOutput(ValueError):
    """spec.output.uri cannot be mounted into the training pod."""


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


def output_mount(run: TrainingRun) -> PodMount:
    """The volume the trainer writes its artifact to, and the directory inside the container."""
    uri = output_uri(run)
    try:
        parsed = parse_artifact_uri(uri)
        if parsed.scheme == "pvc":
            if not parsed.path:
                raise InvalidArtifactURI("a path inside the claim is needed: pvc://<claim>/<path>")
            # The claim's root is mounted and the trainer creates its own directory in it: a
            # subPath would be created by the kubelet as root, unwritable for the trainer.
            return pvc_mount(
                parsed, mount_path=ARTIFACTS_MOUNT, volume_name=ARTIFACTS_VOLUME, sub_path=False
            )
        if parsed.scheme == "file":
            # A directory of the node itself: for single-node development clusters only.
            return PodMount(
                volume={
                    "name": ARTIFACTS_VOLUME,
                    "hostPath": {"path": str(parsed.local_path), "type": "DirectoryOrCreate"},
                },
                volume_mount={"name": ARTIFACTS_VOLUME, "mountPath": ARTIFACTS_MOUNT},
                directory=ARTIFACTS_MOUNT,
            )
    except InvalidArtifactURI as error:
        raise InvalidOutput(f"spec.output.uri {uri!r}: {error}") from error
    raise InvalidOutput(
        f"spec.output.uri {uri!r} is not supported: use pvc://<claim>/<path> or file:///<path>"
    )
