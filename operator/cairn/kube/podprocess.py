"""Every pod the operator creates shares its process namespace, so that no container's first
process is PID 1.

The kernel drops a signal that PID 1 of a namespace has no handler for. Training code seldom
installs one for SIGTERM, and cairn-serve can only once Python has started: as PID 1, training
code at any moment, or a server whose pod is deleted as its container starts, ignores the
kubelet's SIGTERM (a run suspended, deleted or replaced; a Deployment scaled down or deleted)
and runs on until the SIGKILL at the end of the grace period. With the namespace shared, the
pod's sandbox (pause) is PID 1 and reaps orphans; the container's process is an ordinary one,
which SIGTERM ends unless it handles it.
"""

from typing import Any


def process_namespace() -> dict[str, Any]:
    """The pod spec fields that make SIGTERM reach the container's process."""
    return {"shareProcessNamespace": True}
