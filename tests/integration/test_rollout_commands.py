"""`cairn promote`, `cairn abort`, `cairn pause` and `cairn resume`, run as a user runs them (the
installed script), on real canary rollouts of a ModelDeployment with the in-process operator and
real cairn-serve pods:

- a canary waiting at a `pause: {}` step is promoted by `cairn promote`, skipping the steps left:
  the stable serves the new version and the canary's pods are gone; with no rollout left,
  `cairn promote` says so and fails;
- `cairn abort` rolls a canary back: Degraded says Aborted, the stable still serves the old
  version and the canary's pods are gone;
- `cairn pause` holds a rollout at its step while the operator keeps judging the canary, whose
  passing intervals would otherwise have moved it on; `cairn resume` lets it finish.
"""

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import cairn, ok
from tests.support.deployments import (
    create_deployment,
    describe,
    service_base,
    wait_answered_by,
    wait_serving,
)
from tests.support.kube import Kube, read_or_none
from tests.support.operator import RunningOperator
from tests.support.rollouts import (
    ROLLOUT_TIMEOUT,
    SETOSA,
    canary_spec,
    set_version,
    status_of,
    traffic,
    two_versions,
    wait_at_step,
)
from tests.support.training import condition, expect_event, get
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
# Without analysis: only the steps, and the person at the gate, decide.
GATED: list[Body] = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]


def canary_pods(k8s: Kube, namespace: str, name: str) -> list[str]:
    selector = f"cairn.dev/deployment={name},cairn.dev/track=canary"
    return [
        pod.metadata.name
        for pod in k8s.core.list_namespaced_pod(namespace, label_selector=selector).items
    ]


def wait_canary_gone(k8s: Kube, namespace: str, name: str) -> None:
    """Until the canary's Deployment and every one of its pods are gone."""
    wait_for(
        lambda: (
            read_or_none(k8s.apps.read_namespaced_deployment, f"{name}-canary", namespace) is None
            and not canary_pods(k8s, namespace, name)
        ),
        timeout=60,
        message=f"the canary Deployment of {name} and its pods to be removed",
        describe=lambda: str(canary_pods(k8s, namespace, name)),
    )


def event_messages(k8s: Kube, namespace: str, name: str, reason: str) -> list[str]:
    selector = f"involvedObject.name={name},reason={reason}"
    return [
        e.message for e in k8s.core.list_namespaced_event(namespace, field_selector=selector).items
    ]


def at_the_gate(k8s: Kube, namespace: str, artifacts: Path, name: str) -> str:
    """Version 1 served by `name`, version 2 rolled out as a canary that waits at the `pause: {}`
    step (step 1, weight 50); returns the Service's address."""
    two_versions(k8s, namespace, artifacts)
    create_deployment(k8s, namespace, name, version=1, strategy=canary_spec(GATED, analysis=None))
    wait_serving(k8s, namespace, name, 1)
    base = service_base(k8s, namespace, name)
    set_version(k8s, namespace, name, 2)
    gate = wait_at_step(k8s, namespace, name, 1, 50)
    assert "waits for `cairn resume`" in gate["message"], gate
    return base


def test_cairn_promote_moves_a_canary_at_a_manual_gate_to_stable(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    base = at_the_gate(k8s, namespace, artifacts, "iris")

    said = ok("promote", "iris", "-n", namespace)
    assert said.strip() == "iris: promoting version 2 (remaining steps skipped)"

    mdep = wait_serving(k8s, namespace, "iris", 2)
    assert mdep["status"]["phase"] == "Available" and not mdep["status"].get("canary")
    assert condition(mdep, "Degraded")["status"] == "False"
    wait_canary_gone(k8s, namespace, "iris")
    labels = k8s.apps.read_namespaced_deployment("iris-stable", namespace).metadata.labels
    assert labels["cairn.dev/version"] == "2"
    wait_answered_by(base, "2")
    expect_event(k8s, namespace, "iris", "Promoted")
    assert event_messages(k8s, namespace, "iris", "Promoting") == [
        "iris-v2 promoted with `cairn promote`"
    ]
    # The step after the gate (setWeight 100) was skipped, never started.
    assert event_messages(k8s, namespace, "iris", "StepStarted") == ["iris-v2: step 2/3"]

    # Nothing left to promote: the command says so, and changes nothing.
    again = cairn("promote", "iris", "-n", namespace)
    assert again.returncode == 1
    assert "iris has no rollout in progress" in again.stderr and "Traceback" not in again.stderr


def test_cairn_abort_rolls_a_canary_back_and_the_stable_serves_on(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    base = at_the_gate(k8s, namespace, artifacts, "iris")

    said = ok("abort", "iris", "-n", namespace)
    assert said.strip() == "iris: rolling back version 2"

    def rolled_back() -> Body | None:
        mdep = get(k8s, namespace, "modeldeployments", "iris") or {}
        return (
            mdep if ((mdep.get("status") or {}).get("rollback") or {}).get("version") == 2 else None
        )

    mdep = wait_for(
        rolled_back,
        timeout=ROLLOUT_TIMEOUT,
        message="iris-v2 to be rolled back",
        describe=lambda: describe(k8s, namespace, "iris"),
    )
    status = mdep["status"]
    assert status["rollback"]["reason"] == "Aborted"
    assert status["stable"]["version"] == 1 and not status.get("canary")
    degraded = condition(mdep, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "Aborted"
    assert "aborted with `cairn abort`" in degraded["message"]
    assert "still serving iris-v1" in degraded["message"]
    wait_canary_gone(k8s, namespace, "iris")
    labels = k8s.apps.read_namespaced_deployment("iris-stable", namespace).metadata.labels
    assert labels["cairn.dev/version"] == "1"
    wait_answered_by(base, "1")
    expect_event(k8s, namespace, "iris", "RolledBack")
    assert "Promoting" not in {e.reason for e in k8s.core.list_namespaced_event(namespace).items}


def test_cairn_pause_holds_a_rollout_at_its_step_and_cairn_resume_lets_it_finish(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts)
    # With analysis (every 3 s): a step completes once its pods are ready and an interval of
    # traffic passes.
    steps: list[Body] = [{"setWeight": 50}, {"setWeight": 100}]
    create_deployment(k8s, namespace, "iris", version=1, strategy=canary_spec(steps))
    wait_serving(k8s, namespace, "iris", 1)
    base = service_base(k8s, namespace, "iris")

    with traffic(base, [SETOSA.tolist()]) as sent:
        set_version(k8s, namespace, "iris", 2)
        wait_for(
            lambda: (status_of(k8s, namespace, "iris").get("canary") or {}).get("version") == 2,
            timeout=ROLLOUT_TIMEOUT,
            interval=0.2,
            message="the rollout of iris-v2 to start",
            describe=lambda: describe(k8s, namespace, "iris"),
        )
        # Caught at its first step: the canary's pods start, then a baseline and a whole
        # interval must be read before that step can complete.
        said = ok("pause", "iris", "-n", namespace)
        assert said.strip() == "iris: paused (spec.paused=true)"
        generation = (get(k8s, namespace, "modeldeployments", "iris") or {})["metadata"][
            "generation"
        ]
        held = wait_for(
            lambda: (lambda s: s if s.get("observedGeneration", 0) >= generation else None)(
                status_of(k8s, namespace, "iris")
            ),
            timeout=30,
            message="the operator to see spec.paused",
        )
        assert held["canary"]["step"] == 0, held

        # While paused the operator goes on judging the canary: its pods become ready and
        # intervals of traffic pass, each of which would have completed the step; the step
        # stays.
        judged_at: set[str] = set()

        def passing_while_held() -> Body | None:
            status = status_of(k8s, namespace, "iris")
            canary = status.get("canary") or {}
            assert canary.get("step") == 0 and canary.get("version") == 2, status
            assert (status.get("stable") or {}).get("version") == 1, status
            judged_at.add(str(canary.get("lastAnalysisAt")))
            ready = canary.get("readyReplicas") == canary.get("replicas") == 1
            passed = (canary.get("passedIntervals") or 0) >= 2
            return status if ready and passed and len(judged_at) >= 3 else None

        status = wait_for(
            passing_while_held,
            timeout=ROLLOUT_TIMEOUT,
            message="intervals judged Pass while the rollout is paused",
            describe=lambda: describe(k8s, namespace, "iris") + f"; traffic {sent.answers}",
        )
        assert status["phase"] == "Paused"
        assert "spec.paused is true: `cairn resume` goes on" in status["message"]
        assert condition({"status": status}, "Progressing")["status"] == "True"

        said = ok("resume", "iris", "-n", namespace)
        assert said.strip() == "iris: resumed (version 2, step 0)"
        wait_serving(k8s, namespace, "iris", 2)

    mdep = get(k8s, namespace, "modeldeployments", "iris") or {}
    assert mdep["spec"]["paused"] is False
    wait_canary_gone(k8s, namespace, "iris")
    expect_event(k8s, namespace, "iris", "Promoted")
    assert sent.versions() == {"1", "2"}, sent.answers
