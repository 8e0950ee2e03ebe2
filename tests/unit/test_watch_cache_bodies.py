"""What the operator's watch caches keep of an object (controllers.cache): everything the
controllers read, without metadata.managedFields, which are often most of a body's size, and of a
run's Job without the pod template it never reads, and of a run's pod without its spec."""

from typing import Any

import kopf

from cairn.api import TrainingRun
from cairn.api.trainingrun import ChampionRef
from cairn.controllers.cache import cacheable, slim_job, slim_pod
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


def test_a_cached_pod_keeps_what_its_run_reads() -> None:
    run = TrainingRun.model_validate(
        {
            "metadata": {"name": "iris-2", "namespace": "ml", "uid": "u"},
            "spec": {"model": "iris", "image": "trainer:1"},
        }
    )
    job = jobspec.build_job(run, None)
    job["status"] = {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
    terminated = {"exitCode": 3, "reason": "Error", "finishedAt": "2026-11-30T17:00:00Z"}
    failed = {
        "metadata": {"name": "iris-2-abcde", "namespace": "ml", "managedFields": [{}]},
        "spec": job["spec"]["template"]["spec"],
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "trainer",
                    "image": "trainer:1",
                    "imageID": "sha256:1",
                    "state": {"terminated": terminated},
                }
            ],
        },
    }
    pending = {
        "metadata": {"name": "iris-2-fghij", "namespace": "ml"},
        "spec": job["spec"]["template"]["spec"],
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes",
                }
            ],
        },
    }
    for pods in ([failed], [pending], [failed, pending]):
        kept = [slim_pod(kopf.Body(pod)) for pod in pods]  # type: ignore[arg-type]
        assert all("spec" not in pod and "managedFields" not in pod["metadata"] for pod in kept)
        assert observe(job, kept) == observe(job, pods)
    assert observe(job, [slim_pod(kopf.Body(failed))]).phase == "Failed"  # type: ignore[arg-type]
