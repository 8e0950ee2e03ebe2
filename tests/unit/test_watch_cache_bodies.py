"""What the operator's watch caches keep of an object (controllers.cache): everything the
controllers read, without metadata.managedFields, which are often most of a body's size, and of a
run's Job without the pod template it never reads."""

from typing import Any

import kopf

from cairn.api import TrainingRun
from cairn.api.trainingrun import ChampionRef
from cairn.controllers.cache import cacheable, slim_job
from cairn.controllers.trainingrun import jobspec
from cairn.controllers.trainingrun.observe import observe


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


def test_a_cached_job_keeps_what_its_run_reads() -> None:
    run = TrainingRun.model_validate(
        {
            "metadata": {"name": "iris-1", "namespace": "ml", "uid": "u"},
            "spec": {"model": "iris", "image": "trainer:1", "activeDeadlineSeconds": 600},
        }
    )
    champion = ChampionRef(version=3, digest="sha256:" + "c" * 64, uri="pvc://cairn-artifacts/v3")
    job = jobspec.build_job(run, champion)
    job["metadata"]["managedFields"] = [{"manager": "kube-controller-manager"}]
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    kept = slim_job(kopf.Body(job))  # type: ignore[arg-type]
    assert kept["status"] == job["status"]
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == job["metadata"]["annotations"]
    for field in ("suspend", "backoffLimit", "activeDeadlineSeconds"):
        assert kept["spec"].get(field) == job["spec"].get(field)
    assert jobspec.champion_of(kept) == jobspec.champion_of(job) == champion
    assert observe(kept, []) == observe(job, [])
    container = kept["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "trainer:1" and "volumeMounts" not in container
    assert "volumes" not in kept["spec"]["template"]["spec"]
