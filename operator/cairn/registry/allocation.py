"""Allocating version numbers on a Model's status: pure functions, applied with optimistic
concurrency by the caller (read, compute, replace with the resourceVersion read; retry on 409).

A number is recorded against the run it was given to (status.allocations) in the same write that
raises the counter, so a run that is retried after a crash gets the same number again: numbers
are never reused, never duplicated, and never lost.
"""

from typing import Any

Status = dict[str, Any]


def allocate(status: Status, run: str) -> tuple[int, Status]:
    """The version for `run` and the status recording it (unchanged when already allocated)."""
    allocations: dict[str, int] = dict(status.get("allocations") or {})
    if run in allocations:
        return allocations[run], status
    version = int(status.get("versionCounter") or 0) + 1
    allocations[run] = version
    return version, {**status, "versionCounter": version, "allocations": allocations}


def release(status: Status, run: str, version: int) -> Status:
    """The status once `run`'s ModelVersion exists: its allocation dropped, latestVersion raised."""
    allocations = {k: v for k, v in (status.get("allocations") or {}).items() if k != run}
    latest = max(int(status.get("latestVersion") or 0), version)
    return {**status, "allocations": allocations, "latestVersion": latest}
