"""The canary rollout state machine (controllers/deployment/rollout.py) and the status it
gives: pure, every decision from the spec, status and what the Deployments show."""

import dataclasses
import datetime
from typing import Any

from cairn.api import ModelDeploymentSpec
from cairn.api.modeldeployment import CanaryStatus, RollbackStatus
from cairn.controllers.deployment.rollout import Plan, Progress, TrackPlan, plan, split
from cairn.controllers.deployment.status import Observed, compute_status, pod_problems
from tests.unit.test_deployment_logic import V1, V2, deployment, mdep

Body = dict[str, Any]
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
STEPS = [{"setWeight": 50}, {"pause": {"duration": "5s"}}, {"setWeight": 100}]
ANALYSIS = {"interval": "3s", "failureLimit": 2, "minRequests": 10}


def spec(replicas: int = 2, steps: list[Body] | None = None, **extra: Any) -> ModelDeploymentSpec:
    canary_: Body = {"steps": steps or STEPS, **extra.pop("canary", {})}
    return ModelDeploymentSpec.model_validate(
        {"model": "iris", "replicas": replicas, "strategy": {"canary": canary_}, **extra}
    )


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    """A time as status carries it."""
    return CanaryStatus(step_started_at=at(seconds)).to_dict()["stepStartedAt"]  # type: ignore[no-any-return]


def canary(step: int, started: float = 0, **fields: Any) -> CanaryStatus:
    return CanaryStatus.model_validate(
        {
            "version": 2,
            "step": step,
            "stepStartedAt": at(started),
            "startedAt": at(0),
            "failedIntervals": 0,
            "passedIntervals": 0,
            **fields,
        }
    )


def state(chosen: Plan) -> Body:
    """status.canary as the plan would write it."""
    assert chosen.canary_status is not None
    return chosen.canary_status.to_dict()


def reasons(chosen: Plan) -> list[str]:
    return [note.reason for note in chosen.notes]


def test_replica_ratio_split_keeps_a_canary_and_a_stable_pod() -> None:
    assert split(1, 0) == (1, 0)
    assert split(1, 10) == (1, 1)  # one replica: any weight is one pod beside one
    assert split(1, 100) == (1, 1)
    assert split(4, 25) == (3, 1)
    assert split(4, 50) == (2, 2)
    assert split(10, 1) == (9, 1)  # rounds up to one pod
    assert split(4, 100) == (1, 4)  # the stable keeps one pod while the rollout runs
    assert split(0, 50) == (0, 0)


def test_without_canary_a_new_version_replaces_the_stable_in_place() -> None:
    assert plan(spec(strategy=None), V2, V1, Progress(now=T0)) == Plan(stable=TrackPlan(V2, 2))
    # The first version is served at once, canary or not.
    assert plan(spec(), V1, None, Progress(now=T0)) == Plan(stable=TrackPlan(V1, 2))


def test_a_new_version_starts_a_canary_at_step_zero() -> None:
    chosen = plan(spec(), V2, V1, Progress(now=T0))

    assert chosen.stable == TrackPlan(V1, 1)
    assert chosen.canary == TrackPlan(V2, 1)
    assert state(chosen)["step"] == 0
    assert state(chosen)["weight"] == 50
    assert state(chosen)["stepStartedAt"] == stamp(0)
    assert reasons(chosen) == ["RolloutStarted"]
    # spec.paused holds it before it starts.
    held = plan(spec(paused=True), V2, V1, Progress(now=T0))
    assert held.held == V2 and held.canary is None


def test_steps_walk_setweight_pause_and_promote() -> None:
    # setWeight completes once the canary's pods are ready.
    waiting = plan(spec(), V2, V1, Progress(canary(0), now=at(1)))
    assert state(waiting)["step"] == 0
    moved = plan(spec(), V2, V1, Progress(canary(0), canary_ready=True, now=at(2)))
    assert state(moved)["step"] == 1
    assert state(moved)["stepStartedAt"] == stamp(2)
    # pause {duration: 5s} counts from the step's start, across restarts (it is in status).
    assert state(plan(spec(), V2, V1, Progress(canary(1, 2), now=at(6)))) == {
        **canary(1, 2).to_dict(),
        "replicas": 1,
        "weight": 50,
    }
    after = plan(spec(), V2, V1, Progress(canary(1, 2), now=at(7.5)))
    assert state(after)["step"] == 2
    # setWeight 100: every replica on the canary, one stable pod kept.
    full = plan(spec(), V2, V1, Progress(canary(2, 7.5), now=at(8)))
    assert full.stable == TrackPlan(V1, 1) and full.canary == TrackPlan(V2, 2)
    # The last step done: promoting, the stable goes to the new version, the canary stays.
    promoting = plan(spec(), V2, V1, Progress(canary(2, 7.5), canary_ready=True, now=at(9)))
    assert state(promoting)["promoting"] is True
    assert promoting.stable == TrackPlan(V2, 2)
    assert reasons(promoting) == ["Promoting"]
    # The stable runs V2 but is not ready yet: the canary keeps serving.
    status = canary(3, 9).model_copy(update={"promoting": True, "replicas": 2})
    pending = plan(spec(), V2, V2, Progress(status, stable_ready=False, now=at(10)))
    assert pending.canary == TrackPlan(V2, 2) and pending.stable == TrackPlan(V2, 2)
    done = plan(spec(), V2, V2, Progress(status, stable_ready=True, now=at(12)))
    assert done == Plan(stable=TrackPlan(V2, 2), notes=done.notes)
    assert reasons(done) == ["Promoted"] and done.canary_status is None


def test_a_manual_pause_waits_for_resume_naming_the_step() -> None:
    steps: list[Body] = [{"setWeight": 50}, {"pause": {}}]
    gate = canary(1)
    assert state(plan(spec(steps=steps), V2, V1, Progress(gate, now=at(600)))) == {
        **gate.to_dict(),
        "replicas": 1,
        "weight": 50,
    }
    stale = Progress(gate, annotations={"cairn.dev/resume": "2/0"}, now=at(600))
    assert state(plan(spec(steps=steps), V2, V1, stale))["step"] == 1
    resumed = Progress(gate, annotations={"cairn.dev/resume": "2/1"}, now=at(600))
    chosen = plan(spec(steps=steps), V2, V1, resumed)
    assert state(chosen)["promoting"] is True
    # spec.paused holds any step.
    paused = plan(spec(paused=True), V2, V1, Progress(canary(0), canary_ready=True, now=at(5)))
    assert state(paused)["step"] == 0


def test_with_analysis_a_step_needs_a_passing_interval() -> None:
    with_analysis = spec(canary={"analysis": ANALYSIS})
    ready = Progress(canary(0), canary_ready=True, now=at(10))
    assert state(plan(with_analysis, V2, V1, ready))["step"] == 0
    inconclusive = Progress(canary(0, verdict="Inconclusive"), canary_ready=True, now=at(100))
    assert state(plan(with_analysis, V2, V1, inconclusive))["step"] == 0
    passed = Progress(canary(0, passedIntervals=1), canary_ready=True, now=at(10))
    moved = state(plan(with_analysis, V2, V1, passed))
    assert moved["step"] == 1 and moved["passedIntervals"] == 0


def test_failed_intervals_roll_back_and_the_version_is_not_retried() -> None:
    with_analysis = spec(canary={"analysis": ANALYSIS})
    results = [
        {"name": "errorRate", "value": 0.5, "stableValue": 0.0, "threshold": "max 0.05",
         "verdict": "Fail"},
    ]  # fmt: skip
    failing = Progress(canary(0, failedIntervals=2, analysis=results), now=at(20))
    chosen = plan(with_analysis, V2, V1, failing)

    assert chosen.canary is None and chosen.canary_status is None
    assert chosen.stable == TrackPlan(V1, 2)  # full replicas
    assert chosen.rollback is not None and chosen.rollback.version == 2
    assert chosen.rollback.reason == "AnalysisFailed"
    assert "errorRate 0.5 (stable 0) breaks max 0.05" in chosen.rollback.message
    assert reasons(chosen) == ["RolledBack"]
    # Not tried again while the target is the failed version; a new version starts afresh.
    again = plan(with_analysis, V2, V1, Progress(rollback=chosen.rollback, now=at(30)))
    assert again.canary is None and again.rollback == chosen.rollback
    v3 = dataclasses.replace(V2, version=3)
    fresh = plan(with_analysis, v3, V1, Progress(rollback=chosen.rollback, now=at(30)))
    assert isinstance(chosen.rollback, RollbackStatus)
    assert fresh.canary == TrackPlan(v3, 1) and fresh.rollback is None


def test_abort_promote_and_a_stuck_canary() -> None:
    abort = Progress(canary(0), annotations={"cairn.dev/abort": "2"}, now=at(1))
    aborted = plan(spec(), V2, V1, abort)
    assert aborted.rollback and aborted.rollback.reason == "Aborted"
    assert aborted.canary is None
    # An abort annotation naming another version does nothing.
    other = Progress(canary(0), annotations={"cairn.dev/abort": "7"}, now=at(1))
    assert plan(spec(), V2, V1, other).canary is not None
    promote = Progress(canary(0), annotations={"cairn.dev/promote": "2"}, now=at(1))
    promoted = plan(spec(), V2, V1, promote)
    assert state(promoted)["promoting"] is True
    assert promoted.stable == TrackPlan(V2, 2)
    stuck = Progress(canary(0), canary_stuck="iris-canary-x: CrashLoopBackOff", now=at(700))
    stuck_plan = plan(spec(progressDeadlineSeconds=60), V2, V1, stuck)
    assert stuck_plan.rollback and stuck_plan.rollback.reason == "ProgressDeadlineExceeded"
    assert "no progress in 60s: iris-canary-x: CrashLoopBackOff" in stuck_plan.rollback.message


def test_a_target_moved_mid_rollout_restarts_the_canary() -> None:
    v3 = dataclasses.replace(V2, version=3)
    chosen = plan(spec(), v3, V1, Progress(canary(1), now=at(3)))
    assert chosen.canary == TrackPlan(v3, 1)
    assert state(chosen)["step"] == 0
    assert state(chosen)["version"] == 3


def conditions(status: Body) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_status_during_a_rollout_and_after_a_rollback() -> None:
    body = mdep(version=2, **spec().to_dict())
    chosen = plan(body.spec, V2, V1, Progress(canary(0), now=at(1)))
    can = deployment(V2, replicas=1, ready=1)
    typed = compute_status(body, Observed(V2, chosen, deployment(V1), can))
    status = typed.to_dict()

    assert status["phase"] == "Progressing"
    assert conditions(status)["Progressing"] == ("True", "CanaryProgressing")
    assert status["canary"]["weight"] == 50 and status["canary"]["readyReplicas"] == 1
    assert status["replicas"] == 2
    assert "canary iris-v2 at step 1/3, weight 50%" in status["message"]

    rolled = plan(
        body.spec, V2, V1, Progress(canary(0), annotations={"cairn.dev/abort": "2"}, now=at(2))
    )
    body.status = typed
    after = compute_status(
        body, Observed(V2, rolled, deployment(V1, replicas=2, ready=2))
    ).to_dict()
    assert after["phase"] == "Degraded"
    assert conditions(after)["Degraded"] == ("True", "Aborted")
    assert conditions(after)["Available"][0] == "True"
    assert "canary" not in after  # cleared
    assert after["rollback"]["version"] == 2
    assert "still serving iris-v1" in after["message"]


def test_pod_problems_say_why_pods_are_not_ready() -> None:
    pod = {
        "metadata": {"name": "iris-canary-x"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "reason": "Error",
                            "exitCode": 3,
                            "message": "loading\ndigest mismatch: sha256:aa != sha256:bb",
                        }
                    },
                }
            ],
        },
    }
    assert pod_problems([pod]) == (
        "iris-canary-x: CrashLoopBackOff, last Error (exit 3: digest mismatch: "
        "sha256:aa != sha256:bb)"
    )
    assert pod_problems([]) == "no pod became ready"
    running = {
        "metadata": {"name": "iris-canary-y"},
        "status": {"phase": "Running", "containerStatuses": [{"ready": False, "state": {}}]},
    }
    logs = {"iris-canary-y": "starting\nmodel 'iris' is not served: digest mismatch\n"}
    assert pod_problems([running], logs) == (
        "iris-canary-y: not ready: model 'iris' is not served: digest mismatch"
    )
