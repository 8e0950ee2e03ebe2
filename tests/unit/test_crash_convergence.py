"""The operator stopped after any API call of a registration or of a rollout, or any of their
writes refused with a 409, converges on the next reconciles: no duplicate or lost version, no
lost alias, no stuck rollout. Every call is tried, not a few chosen points (tests/support/
fake_kube.py plays the API server; the real-cluster tests kill the real operator)."""

from collections.abc import Callable, Iterator

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import generate_latest

from cairn.api.labels import RUN_UID_LABEL
from cairn.controllers.deployment.reconcile import reconcile as reconcile_deployment
from cairn.controllers.registry.models import reconcile_model
from cairn.controllers.registry.versions import reconcile_version
from cairn.controllers.trainingrun.reconcile import reconcile as reconcile_run
from cairn.serving.metrics import ServingMetrics
from tests.support.fake_kube import Crash, FakeKube, Fault, faults

NS = "ml"
DIGEST = "sha256:" + "ab" * 32
Step = Callable[[FakeKube], None]


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], FakeKube]]:
    """A factory of fresh fake clusters, each installed in place of cairn.kube."""

    def fresh() -> FakeKube:
        made = FakeKube()
        made.install(monkeypatch)
        return made

    yield fresh


def converge(kube: FakeKube, steps: list[Step], rounds: int = 16) -> None:
    """Run the steps until two rounds in a row write nothing (the cluster's step in a quiet round
    may still have changed what the next one sees): the operator, restarted, caught up."""
    quiet = 0
    for _ in range(rounds):
        before = len(kube.writes)
        for step in steps:
            step(kube)
        quiet = quiet + 1 if len(kube.writes) == before else 0
        if quiet == 2:
            return
    raise AssertionError(f"no convergence after {rounds} rounds; last calls: {kube.calls[-20:]}")


def interrupted(kube: FakeKube, fault: Fault, steps: list[Step], rounds: int = 12) -> None:
    """The steps until `fault` happens, then, the operator restarted, until they converge."""
    kube.calls.clear()
    kube.writes.clear()
    kube.fault = fault
    for _ in range(rounds):
        try:
            for step in steps:
                step(kube)
        except (Crash, ApiException):
            break
    assert kube.fired == fault, f"{fault} never happened: the path is shorter than on the clean run"
    converge(kube, steps)


def clean_path(factory: Callable[[], FakeKube], steps: list[Step]) -> FakeKube:
    kube = factory()
    kube.calls.clear()
    kube.writes.clear()
    for step in steps:
        step(kube)
    return kube


# --- registration -----------------------------------------------------------------------------

SUMMARY = {
    "metrics": {"accuracy": 0.97},
    "artifact": {"uri": "pvc://cairn-artifacts/iris/run", "digest": DIGEST, "size": 10},
    "dataset": {"uri": "sklearn://iris", "digest": DIGEST},
}


def training_world(factory: Callable[[], FakeKube], runs: tuple[str, ...]) -> FakeKube:
    kube = factory()
    kube.add("persistentvolumeclaims", {"metadata": {"name": "cairn-artifacts"}})
    for name in runs:
        kube.add("trainingruns", {"metadata": {"name": name}, "spec": {"model": "iris"}})
    return kube


def run_steps(runs: tuple[str, ...]) -> list[Step]:
    """Each run reconciled, its Job finished by the cluster, reconciled again; the registry."""

    def reconcile_all(kube: FakeKube) -> None:
        for name in runs:
            reconcile_run(NS, name)

    def cluster(kube: FakeKube) -> None:
        for name in runs:
            job = kube.store.get(("jobs", NS, name))
            if job is not None and "status" not in job:
                kube.finish_job(name, SUMMARY)

    def registry(kube: FakeKube) -> None:
        for version in kube.objects_of("modelversions"):
            reconcile_version(NS, version["metadata"]["name"])
        if kube.store.get(("models", NS, "iris")) is not None:
            reconcile_model(NS, "iris")

    return [reconcile_all, cluster, reconcile_all, registry]


def check_registered(kube: FakeKube, runs: tuple[str, ...]) -> None:
    versions = kube.objects_of("modelversions")
    numbers = sorted(v["spec"]["version"] for v in versions)
    assert len(set(numbers)) == len(runs) == len(versions), numbers  # none twice, none lost
    for name in runs:
        run = kube.store[("trainingruns", NS, name)]
        status = run["status"]
        registered = next(c for c in status["conditions"] if c["type"] == "Registered")
        assert registered["status"] == "True", registered
        (own,) = [
            v for v in versions if v["metadata"]["labels"][RUN_UID_LABEL] == run["metadata"]["uid"]
        ]
        assert own["spec"]["version"] == status["version"]
        assert own["metadata"]["name"] == status["modelVersion"]
        assert own["spec"]["source"]["imageId"].startswith("docker.io/cairn/trainer@sha256:")
    model = kube.store[("models", NS, "iris")]
    assert model["status"]["latestVersion"] == max(numbers)
    assert len(kube.objects_of("jobs")) == len(runs)


@pytest.mark.parametrize("runs", [("iris-1",), ("iris-1", "iris-2")], ids=["one", "two"])
def test_registration_converges_after_a_crash_or_a_conflict_at_every_call(
    kube: Callable[[], FakeKube], runs: tuple[str, ...]
) -> None:
    steps = run_steps(runs)
    clean = clean_path(lambda: training_world(kube, runs), steps)
    converge(clean, steps)
    check_registered(clean, runs)
    assert sorted(v["spec"]["version"] for v in clean.objects_of("modelversions")) == [
        *range(1, len(runs) + 1)
    ]
    tried = list(faults(len(clean.calls), clean.writes))
    assert len(tried) > 20  # every call of the path, not a few chosen points
    for fault in tried:
        world = training_world(kube, runs)
        interrupted(world, fault, steps)
        try:
            check_registered(world, runs)
        except AssertionError as error:
            raise AssertionError(f"after {fault} ({clean.calls[fault.at - 1]}): {error}") from None


def test_a_version_name_taken_by_hand_is_skipped_not_a_stuck_registration(
    kube: Callable[[], FakeKube],
) -> None:
    world = training_world(kube, ("iris-1",))
    taken = {
        "metadata": {"name": "iris-v1", "labels": {"cairn.dev/model": "iris"}},
        "spec": {"model": "iris", "version": 1, "artifact": {"uri": "pvc://x/y", "digest": DIGEST}},
    }
    world.add("modelversions", taken)
    converge(world, run_steps(("iris-1",)))
    run = world.store[("trainingruns", NS, "iris-1")]
    assert run["status"]["modelVersion"] == "iris-v2"
    assert world.store[("modelversions", NS, "iris-v1")]["spec"]["artifact"]["uri"] == "pvc://x/y"


# --- a canary rollout -------------------------------------------------------------------------

STEPS = [{"setWeight": 50}, {"setWeight": 100}]


def artifact(number: int) -> dict[str, object]:
    return {"uri": f"pvc://cairn-artifacts/iris/iris-{number}", "digest": DIGEST}


def metrics_page(requests: int) -> str:
    served = ServingMetrics("iris", "1", ["a"], [0, 1])
    for _ in range(requests):
        served.observe_request("v2", 200, 0.002)
    return generate_latest(served.registry).decode()


def rollout_world(factory: Callable[[], FakeKube], analysis: bool) -> FakeKube:
    """v1 served by ModelDeployment iris, then the production alias moved to v2."""
    kube = factory()
    kube.add("persistentvolumeclaims", {"metadata": {"name": "cairn-artifacts"}})
    kube.add("models", {"metadata": {"name": "iris"}, "spec": {"aliases": {"production": 1}}})
    for number in (1, 2):
        kube.add(
            "modelversions",
            {
                "metadata": {"name": f"iris-v{number}", "labels": {"cairn.dev/model": "iris"}},
                "spec": {"model": "iris", "version": number, "artifact": artifact(number)},
            },
        )
    canary: dict[str, object] = {"steps": STEPS}
    if analysis:
        canary["analysis"] = {"interval": "1ms", "failureLimit": 2, "minRequests": 1}
    kube.add(
        "modeldeployments",
        {
            "metadata": {"name": "iris"},
            "spec": {
                "model": "iris",
                "alias": "production",
                "replicas": 2,
                "strategy": {"canary": canary},
            },
        },
    )
    converge(kube, rollout_steps())
    assert kube.store[("modeldeployments", NS, "iris")]["status"]["stable"]["version"] == 1
    kube._patch("models", NS, "iris", {"spec": {"aliases": {"production": 2}}})
    return kube


def rollout_steps() -> list[Step]:
    def registry(kube: FakeKube) -> None:
        for number in (1, 2):
            reconcile_version(NS, f"iris-v{number}")
        reconcile_model(NS, "iris")

    def deployment(kube: FakeKube) -> None:
        reconcile_deployment(NS, "iris")

    def cluster(kube: FakeKube) -> None:
        kube.settle_deployments()
        served = len(kube.calls)  # pods answer more requests as time goes on
        for key in kube.store:
            if key[0] == "pods":
                kube.pod_metrics[key[2]] = metrics_page(10 + served)

    return [registry, deployment, cluster]


def check_promoted(kube: FakeKube) -> None:
    status = kube.store[("modeldeployments", NS, "iris")]["status"]
    assert status["stable"]["version"] == 2, status
    assert "canary" not in status and "rollback" not in status, status
    assert ("deployments", NS, "iris-canary") not in kube.store
    stable = kube.store[("deployments", NS, "iris-stable")]
    assert stable["metadata"]["labels"]["cairn.dev/version"] == "2"
    assert stable["spec"]["replicas"] == 2
    assert kube.store[("models", NS, "iris")]["status"]["aliases"] == {"production": 2}
    assert kube.reasons("iris").count("Promoted") <= 1
    assert "RolledBack" not in kube.reasons("iris")
    v2 = kube.store[("modelversions", NS, "iris-v2")]["status"]
    assert v2["deployments"] == ["iris"]  # the version's own controller lists who serves it
    assert "deployments" not in kube.store[("modelversions", NS, "iris-v1")]["status"]


@pytest.mark.parametrize("analysis", [False, True], ids=["steps", "analysis"])
def test_a_rollout_converges_after_a_crash_or_a_conflict_at_every_call(
    kube: Callable[[], FakeKube], analysis: bool
) -> None:
    steps = rollout_steps()
    clean = rollout_world(kube, analysis)
    clean.calls.clear()
    clean.writes.clear()
    converge(clean, steps)
    check_promoted(clean)
    assert clean.reasons("iris").count("Promoted") == 1
    tried = list(faults(len(clean.calls), clean.writes))
    assert len(tried) > 20
    for fault in tried:
        world = rollout_world(kube, analysis)
        interrupted(world, fault, steps)
        try:
            check_promoted(world)
        except AssertionError as error:
            raise AssertionError(f"after {fault} ({clean.calls[fault.at - 1]}): {error}") from None
