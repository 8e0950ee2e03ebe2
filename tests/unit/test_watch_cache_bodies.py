"""What the operator's watch caches keep of an object (controllers.cache): everything the
controllers read, without metadata.managedFields, which are often most of a body's size."""

from typing import Any

import kopf

from cairn.controllers.cache import cacheable


def test_a_cached_body_drops_only_the_managed_fields() -> None:
    raw: dict[str, Any] = {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {
            "name": "iris-1",
            "namespace": "ml",
            "resourceVersion": "42",
            "labels": {"cairn.dev/model": "iris"},
            "managedFields": [{"manager": "cairn-operator", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {"model": "iris"},
        "status": {"phase": "Running"},
    }
    kept = cacheable(kopf.Body(raw))  # type: ignore[arg-type]
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"] == {k: v for k, v in raw["metadata"].items() if k != "managedFields"}
    assert kept["spec"] == raw["spec"] and kept["status"] == raw["status"]
    assert "managedFields" in raw["metadata"]  # the watch's own body is left as it was


def test_a_body_without_managed_fields_is_kept_whole() -> None:
    raw: dict[str, Any] = {"metadata": {"name": "m", "namespace": "ml"}, "spec": {}}
    assert cacheable(kopf.Body(raw)) == raw  # type: ignore[arg-type]
