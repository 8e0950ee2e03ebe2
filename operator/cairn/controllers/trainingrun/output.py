"""Where a run's artifact is written: spec.output.uri, or a default on the artifacts claim."""

from typing import Any

from cairn.storage import InvalidArtifactURI, PodMount, parse_artifact_uri, pvc_mount

DEFAULT_CLAIM = "cairn-artifacts"
ARTIFACTS_VOLUME = "artifacts"
ARTIFACTS_MOUNT = "/cairn/artifacts"
Body = dict[str, Any]


class InvalidOutput(ValueError):
    """spec.output.uri cannot be mounted into the training pod."""


def default_uri(run: Body) -> str:
    return f"pvc://{DEFAULT_CLAIM}/{run['spec']['model']}/{run['metadata']['name']}"


def output_uri(run: Body) -> str:
    return str((run["spec"].get("output") or {}).get("uri") or default_uri(run))


def output_mount(run: Body) -> PodMount:
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
