"""Canary rollouts on the real cluster with the in-process operator and real cairn-serve pods:
the test itself sends traffic to the Service, the operator reads every pod's /metrics through
the API server and judges the canary per interval.

- a healthy new version walks every step (setWeight 50, pause 5s, setWeight 100) and is
  promoted, with both versions answering the test's requests during the rollout;
- a canary that gets no traffic is Inconclusive and is never promoted;
- a canary that answers a fifth of the requests with 5xx is rolled back, the stable untouched;
- a canary whose pods never become ready is rolled back after progressDeadlineSeconds;
- a moved alias starts a rollout, which survives an operator kill at a manual gate.
"""

import collections
import datetime
import time
from pathlib import Path
from typing import Any

import pytest

from cairn.cli.main import main
from tests.support.deployments import (
    create_deployment,
    create_version,
    describe,
    save_version,
    service_base,
    serving,
    wait_serving,
    wait_version_phase,
)
from tests.support.kube import Kube, read_or_none
from tests.support.operator import OperatorProcess, RunningOperator
from tests.support.rollouts import (
    ROLLOUT_TIMEOUT,
    SETOSA,
    VIRGINICA,
    canary_spec,
    set_version,
    status_of,
    traffic,
    two_versions,
)
from tests.support.training import (
    GROUP,
    VERSION,
    condition,
    create_model,
    event_reasons,
    expect_event,
    expect_events,
    get,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]


@pytest.mark.both_operators
def test_a_healthy_canary_walks_every_step_and_is_promoted(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts)
    steps: list[Body] = [{"setWeight": 50}, {"pause": {"duration": "5s"}}, {"setWeight": 100}]
    create_deployment(k8s, namespace, "iris", version=1, strategy=canary_spec(steps))
    wait_serving(k8s, namespace, "iris", 1)
    base = service_base(k8s, namespace, "iris")

    seen_steps: set[int] = set()
    verdicts: set[str] = set()
    with traffic(base, [SETOSA.tolist(), VIRGINICA.tolist()]) as sent:
        set_version(k8s, namespace, "iris", 2)

        def promoted() -> bool:
            status = status_of(k8s, namespace, "iris")
            canary = status.get("canary") or {}
            if canary.get("step") is not None:
                seen_steps.add(int(canary["step"]))
            if canary.get("verdict"):
                verdicts.add(canary["verdict"])
            return (
                (status.get("stable") or {}).get("version") == 2
                and not canary
                and status.get("phase") == "Available"
            )

        wait_for(
            promoted,
            timeout=ROLLOUT_TIMEOUT,
            interval=0.3,
            message="iris-v2 to be promoted",
            describe=lambda: describe(k8s, namespace, "iris") + f"; traffic {sent.answers}",
        )
        # The promoted stable answers alone once the canary's pods left the endpoints.
        time.sleep(8)

    assert sent.versions() == {"1", "2"}, sent.answers  # both answered during the rollout
    assert sent.failures() == 0, sent.answers  # nothing lost on the way
    assert {0, 1, 2} <= seen_steps
    assert "Pass" in verdicts and "Fail" not in verdicts
    expect_events(k8s, namespace, "iris", {"RolloutStarted", "Promoting", "Promoted"})
    assert "RolledBack" not in event_reasons(k8s, namespace, "iris")
    assert read_or_none(k8s.apps.read_namespaced_deployment, "iris-canary", namespace) is None
    labels = k8s.apps.read_namespaced_deployment("iris-stable", namespace).metadata.labels
    assert labels["cairn.dev/version"] == "2"
    # The registry shows what is live: v2 served by iris, v1 no longer.
    assert serving(k8s, namespace, "iris-v2") == ["iris"]
    assert serving(k8s, namespace, "iris-v1") is None


def test_a_canary_without_traffic_is_inconclusive_and_never_promoted(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts)
    steps: list[Body] = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
    create_deployment(k8s, namespace, "idle", version=1, strategy=canary_spec(steps))
    wait_serving(k8s, namespace, "idle", 1)

    set_version(k8s, namespace, "idle", 2)
    # Canary pods ready, a baseline and then several intervals judged, all with no traffic.
    first = wait_for(
        lambda: (status_of(k8s, namespace, "idle").get("canary") or {}).get("verdict"),
        timeout=ROLLOUT_TIMEOUT,
        message="a judged interval",
        describe=lambda: describe(k8s, namespace, "idle"),
    )
    assert first == "Inconclusive"
    # Four more intervals judged (each a new lastAnalysisAt), far longer than the steps take.
    judged: set[str] = set()

    def four_more() -> bool:
        judged.add(
            str((status_of(k8s, namespace, "idle").get("canary") or {}).get("lastAnalysisAt"))
        )
        return len(judged) >= 5

    wait_for(four_more, timeout=ROLLOUT_TIMEOUT, message="four more judged intervals")

    status = status_of(k8s, namespace, "idle")
    canary = status["canary"]
    assert canary["version"] == 2 and canary["step"] == 0, status
    assert canary["verdict"] == "Inconclusive"
    assert not canary.get("passedIntervals") and not canary.get("failedIntervals")
    assert {r["verdict"] for r in canary["analysis"]} == {"Inconclusive"}
    assert status["stable"]["version"] == 1
    assert status["phase"] == "Progressing"
    assert "Promoting" not in event_reasons(k8s, namespace, "idle")


def test_a_canary_answering_errors_is_rolled_back(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts, second="iris-broken")
    steps: list[Body] = [{"setWeight": 50}, {"pause": {"duration": "30s"}}]
    create_deployment(k8s, namespace, "bad", version=1, strategy=canary_spec(steps))
    wait_serving(k8s, namespace, "bad", 1)
    base = service_base(k8s, namespace, "bad")

    # A fifth of the requests are virginica rows, which the broken version answers with 500.
    rows = [SETOSA.tolist()] * 4 + [VIRGINICA.tolist()]
    with traffic(base, rows) as sent:
        set_version(k8s, namespace, "bad", 2)

        def rolled_back() -> Body | None:
            status = status_of(k8s, namespace, "bad")
            promoted = (status.get("stable") or {}).get("version") == 2
            assert not promoted, f"a canary answering 500s was promoted: {sent.answers}"
            return status if (status.get("rollback") or {}).get("version") == 2 else None

        status = wait_for(
            rolled_back,
            timeout=ROLLOUT_TIMEOUT,
            interval=0.3,
            message="iris-v2 to be rolled back",
            describe=lambda: describe(k8s, namespace, "bad") + f"; traffic {sent.answers}",
        )
        time.sleep(8)  # the canary's pods leave the endpoints
        after = collections.Counter(sent.answers)
        time.sleep(5)

    mdep = get(k8s, namespace, "modeldeployments", "bad") or {}
    degraded = condition(mdep, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "AnalysisFailed"
    assert "errorRate" in degraded["message"] and "max 0.05" in degraded["message"]
    assert status["rollback"]["reason"] == "AnalysisFailed"
    assert mdep["status"]["stable"]["version"] == 1
    assert not mdep["status"].get("canary")
    expect_event(k8s, namespace, "bad", "RolledBack")
    assert read_or_none(k8s.apps.read_namespaced_deployment, "bad-canary", namespace) is None
    # Only the canary answered errors (500s), and none after the rollback.
    codes = {code for (code, _) in sent.answers}
    assert codes <= {200, 500}, sent.answers
    assert sent.answers - after == collections.Counter(
        {k: v for k, v in (sent.answers - after).items() if k == (200, "1")}
    ), sent.answers
    # Not tried again while spec.version still names it.
    time.sleep(4)
    assert read_or_none(k8s.apps.read_namespaced_deployment, "bad-canary", namespace) is None


def test_a_canary_that_never_becomes_ready_is_rolled_back_after_the_deadline(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    create_model(k8s, namespace, "iris", {})
    digest1, _ = save_version(artifacts, "iris-a", 1.0)
    create_version(k8s, namespace, 1, "iris-a", digest1)
    # Version 2 claims a digest its files do not have: its server never becomes ready.
    save_version(artifacts, "iris-b", 0.5)
    create_version(k8s, namespace, 2, "iris-b", "sha256:" + "0" * 64)
    wait_version_phase(k8s, namespace, "iris-v2", "Approved")
    steps: list[Body] = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
    create_deployment(
        k8s,
        namespace,
        "stuck",
        version=1,
        progressDeadlineSeconds=15,
        strategy=canary_spec(steps, analysis=None),
    )
    wait_serving(k8s, namespace, "stuck", 1)

    set_version(k8s, namespace, "stuck", 2)
    status = wait_for(
        lambda: (lambda s: s if (s.get("rollback") or {}).get("version") == 2 else None)(
            status_of(k8s, namespace, "stuck")
        ),
        timeout=ROLLOUT_TIMEOUT,
        message="the stuck canary to be rolled back",
        describe=lambda: describe(k8s, namespace, "stuck"),
    )

    # Not before the deadline: from the rollout's start (its Event) to the rollback (status).
    (started,) = [
        event.first_timestamp or event.event_time or event.metadata.creation_timestamp
        for event in k8s.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=stuck,reason=RolloutStarted"
        ).items
    ]
    rolled_back = datetime.datetime.fromisoformat(status["rollback"]["at"])
    assert (rolled_back - started).total_seconds() >= 15, (started, rolled_back)
    assert status["rollback"]["reason"] == "ProgressDeadlineExceeded"
    assert "no progress in 15s: stuck-canary-" in status["rollback"]["message"]
    mdep = get(k8s, namespace, "modeldeployments", "stuck") or {}
    assert condition(mdep, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert mdep["status"]["stable"]["version"] == 1
    assert read_or_none(k8s.apps.read_namespaced_deployment, "stuck-canary", namespace) is None


def test_an_alias_move_starts_a_rollout_that_survives_an_operator_kill(
    k8s: Kube, namespace: str, artifacts: Path, operator_process: OperatorProcess
) -> None:
    """No manual step starts it; `cairn-operator` is SIGKILLed at the manual gate and, restarted,
    resumes at the same step without recreating anything; `cairn resume` lets it finish."""
    create_model(k8s, namespace, "iris", {"aliases": {"production": 1}})
    digest1, _ = save_version(artifacts, "iris-a", 1.0)
    digest2, _ = save_version(artifacts, "iris-b", 0.5)
    create_version(k8s, namespace, 1, "iris-a", digest1)
    create_version(k8s, namespace, 2, "iris-b", digest2)
    operator_process.start()
    wait_version_phase(k8s, namespace, "iris-v2", "Approved")
    steps: list[Body] = [{"setWeight": 50}, {"pause": {}}]
    create_deployment(
        k8s, namespace, "prod", alias="production", strategy=canary_spec(steps, analysis=None)
    )
    wait_serving(k8s, namespace, "prod", 1)

    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "models", "iris", {"spec": {"aliases": {"production": 2}}}
    )
    at_gate = wait_for(
        lambda: (lambda s: s if (s.get("canary") or {}).get("step") == 1 else None)(
            status_of(k8s, namespace, "prod")
        ),
        timeout=ROLLOUT_TIMEOUT,
        message="the rollout to reach the manual gate",
        describe=lambda: describe(k8s, namespace, "prod"),
    )
    assert at_gate["phase"] == "Paused" and "cairn resume" in at_gate["message"]
    canary_uid = k8s.apps.read_namespaced_deployment("prod-canary", namespace).metadata.uid

    operator_process.kill()
    operator_process.start()
    time.sleep(8)  # several rollout ticks of the new process
    status = status_of(k8s, namespace, "prod")
    assert (
        status["canary"]["step"] == 1
        and status["canary"]["stepStartedAt"] == (at_gate["canary"]["stepStartedAt"])
    )
    assert status["stable"]["version"] == 1
    assert k8s.apps.read_namespaced_deployment("prod-canary", namespace).metadata.uid == canary_uid

    assert main(["resume", "prod", "-n", namespace]) == 0
    wait_serving(k8s, namespace, "prod", 2)
    wait_for(
        lambda: read_or_none(k8s.apps.read_namespaced_deployment, "prod-canary", namespace) is None,
        timeout=30,
        message="the canary Deployment to be removed",
    )
    expect_events(k8s, namespace, "prod", {"RolloutStarted", "Promoted"})
