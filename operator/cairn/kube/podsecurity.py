"""What makes every pod the operator creates (training, dataset probe, serving) meet the
`restricted` Pod Security Standard, so they run in namespaces that enforce it
(https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted): not root, no
privilege escalation, every capability dropped, the runtime's default seccomp profile."""

from typing import Any

# The uid and gid of cairn's images (images/*/Dockerfile). Set explicitly, so that a user's image
# whose USER is root starts too, as this user, instead of being refused for runAsNonRoot.
USER = 1000

Body = dict[str, Any]


def pod_context() -> Body:
    """The pod's securityContext; volumes that support it (claims, emptyDirs) are made writable
    for the group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": USER,
        "runAsGroup": USER,
        "fsGroup": USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_context(read_only_root: bool) -> Body:
    """A container's securityContext. `read_only_root`: for the model server, which writes only
    to its volumes; training code is the user's and writes where it likes (the standard does not
    ask for a read-only root)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
