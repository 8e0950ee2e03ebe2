"""What a training or probe pod mounts to reach its URIs: each claim and node directory once, and
where each URI is then found inside the pod (pure).

The claim a run writes to is mounted writable at its root under ARTIFACTS_MOUNT (the trainer
creates its own directory in it: a subPath would be made by the kubelet as root, unwritable for
the trainer); every other claim read-only under CLAIMS_MOUNT/<claim>. A file:// URI (a directory
of the node: single-node development only) is mounted from the node at the same path.
"""

import dataclasses
import posixpath
from typing import Any

from cairn.storage.errors import InvalidArtifactURI
from cairn.storage.uri import parse_artifact_uri

Body = dict[str, Any]
ARTIFACTS_MOUNT = "/cairn/artifacts"
CLAIMS_MOUNT = "/cairn/claims"


@dataclasses.dataclass
class PodStorage:
    """The volumes of one pod, gathered as its URIs are placed."""

    volumes: list[Body] = dataclasses.field(default_factory=list)
    mounts: list[Body] = dataclasses.field(default_factory=list)
    _claims: dict[str, str] = dataclasses.field(default_factory=dict)  # claim → mount path
    _hosts: dict[str, str] = dataclasses.field(default_factory=dict)  # node directory → mount

    def _add(self, volume: Body, mount_path: str, read_only: bool) -> None:
        name = f"storage-{len(self.volumes)}"
        self.volumes.append({"name": name, **volume})
        self.mounts.append({"name": name, "mountPath": mount_path, "readOnly": read_only})

    def _claim(self, claim: str, writable: bool) -> str:
        if writable and claim in self._claims and self._claims[claim] != ARTIFACTS_MOUNT:
            raise InvalidArtifactURI(f"claim {claim} is mounted read-only already")
        if claim not in self._claims:
            path = ARTIFACTS_MOUNT if writable else posixpath.join(CLAIMS_MOUNT, claim)
            volume = {"persistentVolumeClaim": {"claimName": claim, "readOnly": not writable}}
            self._add(volume, path, read_only=not writable)
            self._claims[claim] = path
        return self._claims[claim]

    def _host(self, directory: str, writable: bool) -> str:
        if directory not in self._hosts:
            kind = "DirectoryOrCreate" if writable else "Directory"
            self._add({"hostPath": {"path": directory, "type": kind}}, directory, not writable)
            self._hosts[directory] = directory
        return self._hosts[directory]

    def place(self, uri: str, *, writable: bool = False, directory: bool = True) -> str:
        """The path of `uri` inside the pod, mounting what it lives on. `directory`: the URI
        names a directory (an artifact), else a file (a dataset). The first URI placed writable
        takes the writable mount; raises InvalidArtifactURI for what cannot be mounted."""
        parsed = parse_artifact_uri(uri)
        if parsed.scheme == "pvc":
            if parsed.claim is None:
                raise InvalidArtifactURI(f"{uri}: a claim is needed: pvc://<claim>/<path>")
            if writable and not parsed.path:
                raise InvalidArtifactURI("a path inside the claim is needed: pvc://<claim>/<path>")
            root = self._claim(parsed.claim, writable)
            return posixpath.join(root, parsed.path).rstrip("/") or root
        if parsed.scheme == "file":
            path = str(parsed.local_path)
            parent = path if directory else posixpath.dirname(path)
            self._host(parent, writable)
            return path
        raise InvalidArtifactURI(
            f"{uri} cannot be mounted into a pod: use pvc://<claim>/<path> or file:///<path>"
        )
