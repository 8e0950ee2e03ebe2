"""Governance rules of the registry, pure: fairness gates judged with the groups' numbers, and the
histories in status (a version's decisions and serving, the Model's copy of approvals) that grow
once per event and never on a resync that finds nothing new."""

import datetime
from typing import Any

from cairn.api import Approval, Model, ModelVersion, TrainingRun
from cairn.api.fairness import FairnessGate, FeatureFairness
from cairn.controllers.registry import models as model_controller
from cairn.controllers.registry.versions import status_for
from cairn.registry import fairness, history
from cairn.registry.registration import version_for

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
DIGEST = "sha256:" + "ab" * 32
SEX = FeatureFairness.model_validate(
    {
        "sensitiveFeature": "sex",
        "positiveLabel": "1",
        "demographicParityDifference": 0.1596,
        "disparateImpactRatio": 0.7752,
        "equalizedOddsDifference": 0.0427,
        "groups": [
            {"group": "female", "count": 612, "selectionRate": 0.5507, "accuracy": 0.83,
             "truePositiveRate": 0.87, "falsePositiveRate": 0.21},
            {"group": "male", "count": 588, "selectionRate": 0.7103, "accuracy": 0.82,
             "truePositiveRate": 0.91, "falsePositiveRate": 0.25},
        ],
    }
)  # fmt: skip


def at(minutes: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def gate(**fields: Any) -> FairnessGate:
    return FairnessGate.model_validate({"sensitiveFeature": "sex", **fields})


# --- fairness gates ---------------------------------------------------------------------------


def test_a_failing_fairness_gate_names_the_groups_and_their_numbers() -> None:
    result = fairness.judge(gate(metric="demographicParityDifference", max=0.1), [SEX])

    assert (result.passed, result.value) == (False, 0.1596)
    assert result.message == (
        "demographicParityDifference for sex = 0.1596, above max 0.1: selection rate "
        "female 0.5507 (n=612), male 0.7103 (n=588)"
    )


def test_the_disparate_impact_ratio_is_held_to_its_minimum() -> None:
    four_fifths = fairness.judge(gate(metric="disparateImpactRatio", min=0.8), [SEX])
    lenient = fairness.judge(gate(metric="disparateImpactRatio", min=0.75), [SEX])

    assert not four_fifths.passed
    assert "below min 0.8" in (four_fifths.message or "")
    assert lenient.passed
    assert lenient.message == "disparateImpactRatio for sex = 0.7752 passes >= 0.75"


def test_equalized_odds_is_explained_by_both_rates() -> None:
    result = fairness.judge(gate(metric="equalizedOddsDifference", max=0.01), [SEX])

    assert "true positive rate female 0.87 (n=612), male 0.91 (n=588)" in (result.message or "")
    assert "false positive rate female 0.21" in (result.message or "")


def test_a_gate_on_fairness_nobody_measured_says_which_call_measures_it() -> None:
    nothing = fairness.judge(gate(metric="demographicParityDifference", max=0.1), [])
    other = fairness.judge(
        gate(metric="demographicParityDifference", max=0.1, sensitiveFeature="age_band"), [SEX]
    )

    assert not nothing.passed and nothing.value is None
    assert "did not measure fairness for sensitive feature sex (it recorded no fairness)" in (
        nothing.message or ""
    )
    assert "training.log_fairness(y_test, model.predict(X_test), {'sex': ...})" in (
        nothing.message or ""
    )
    assert "(recorded only: sex)" in (other.message or "")


def test_a_measure_fairlearn_left_undefined_fails_the_gate() -> None:
    undefined = SEX.model_copy(update={"disparate_impact_ratio": None})

    result = fairness.judge(gate(metric="disparateImpactRatio", min=0.8), [undefined])

    assert not result.passed
    assert "is undefined on the evaluation data" in (result.message or "")


# --- a version's status and history ------------------------------------------------------------


def model(**policy: Any) -> Model:
    return Model.model_validate(
        {
            "metadata": {"name": "credit", "namespace": "ml", "generation": 1},
            "spec": {"sensitiveFeatures": ["sex"], "policy": policy},
        }
    )


def version(number: int = 1, **spec: Any) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "metadata": {"name": f"credit-v{number}", "namespace": "ml", "generation": 1},
            "spec": {
                "model": "credit",
                "version": number,
                "artifact": {"uri": "pvc://cairn-artifacts/credit/1", "digest": DIGEST},
                "metrics": {"accuracy": 0.83},
                **spec,
            },
        }
    )


def judged(
    found: ModelVersion, owner: Model, when: datetime.datetime, deployments: Any = ()
) -> ModelVersion:
    """The version after its reconcile at `when`."""
    new = status_for(found, owner, list(deployments), now=when)
    return found.model_copy(update={"status": new})


FAIR_GATE = {"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 0.1}


def test_a_fairness_gate_failing_makes_the_version_invalid_with_the_numbers() -> None:
    owner = model(
        gates=[{"metric": "accuracy", "op": ">=", "threshold": 0.8}], fairness=[FAIR_GATE]
    )

    status = judged(version(fairness=[SEX.to_dict()]), owner, T0).status

    assert status is not None and status.phase == "Invalid"
    validated = next(c for c in status.conditions or [] if c.type == "Validated")
    assert validated.status == "False" and validated.reason == "GatesFailed"
    assert "demographicParityDifference for sex = 0.1596, above max 0.1" in validated.message
    assert [r.passed for r in status.gates or []] == [True]
    assert [(r.metric, r.passed) for r in status.fairness_gates or []] == [
        ("demographicParityDifference", False)
    ]


def test_a_fairness_gate_without_recorded_fairness_is_invalid_saying_what_to_add() -> None:
    status = judged(version(), model(fairness=[FAIR_GATE]), T0).status

    assert status is not None and status.phase == "Invalid"
    validated = next(c for c in status.conditions or [] if c.type == "Validated")
    assert "training.log_fairness" in validated.message


def with_approval(found: ModelVersion, approval: dict[str, str] | None) -> ModelVersion:
    """The version once a person set (or removed) its spec.approval."""
    decision = Approval.model_validate(approval) if approval else None
    return found.model_copy(update={"spec": found.spec.model_copy(update={"approval": decision})})


def actions(found: ModelVersion) -> list[tuple[str, str | None, str | None]]:
    recorded = (found.status.history if found.status else None) or []
    return [(e.action, e.by, e.reason) for e in recorded]


def test_a_new_version_records_its_verdict_and_the_policy_approval_once() -> None:
    owner = model(fairness=[{**FAIR_GATE, "max": 0.2}])
    first = judged(version(fairness=[SEX.to_dict()]), owner, T0)

    again = judged(first, owner, at(5))

    assert actions(first) == [
        ("GatesPassed", "policy", "1 gate(s) passed"),
        ("AutoApproved", "policy", "gates passed; the Model needs no approval"),
    ]
    assert again.status == first.status  # a resync finds nothing new: nothing to write
    entry = (first.status.history or [])[0] if first.status else None
    assert entry is not None and (entry.from_, entry.to, entry.time) == (None, "Approved", T0)


def test_an_approval_and_its_withdrawal_are_recorded_with_who_and_why() -> None:
    owner = model(requireApproval=True)
    pending = judged(version(), owner, T0)
    decision = {"state": "Approved", "by": "alice@example.com", "reason": "reviewed the card"}
    approved = judged(with_approval(pending, decision), owner, at(1))
    withdrawn = judged(with_approval(approved, None), owner, at(2))

    assert actions(pending)[-1][0] == "PendingApproval"
    assert actions(approved)[-1] == ("Approved", "alice@example.com", "reviewed the card")
    last = (withdrawn.status.history or [])[-1] if withdrawn.status else None
    assert last is not None
    assert (last.action, last.from_, last.to) == (
        "ApprovalWithdrawn",
        "Approved",
        "PendingApproval",
    )


def serving(stable: int | None = None, canary: int | None = None, **more: Any) -> dict[str, Any]:
    status = {
        **({"stable": {"version": stable}} if stable else {}),
        **({"canary": {"version": canary}} if canary else {}),
        **more,
    }
    return {"metadata": {"name": "credit"}, "spec": {"model": "credit"}, "status": status}


def test_who_serves_the_version_and_a_canary_rollback_are_recorded() -> None:
    owner = model()
    fresh = judged(version(2), owner, T0)
    canary = judged(fresh, owner, at(1), [serving(stable=1, canary=2)])
    rolled_back = serving(
        stable=1,
        rollback={"version": 2, "reason": "AnalysisFailed", "message": "errorRate 0.3 > 0.05",
                  "at": "2026-03-01T12:02:30Z"},
    )  # fmt: skip
    after = judged(canary, owner, at(3), [rolled_back])
    resync = judged(after, owner, at(4), [rolled_back])

    assert after.status is not None
    entries = [
        (e.action, e.from_, e.to, e.by)
        for e in after.status.history or []
        if e.action not in ("GatesPassed", "AutoApproved")
    ]
    assert entries == [
        ("Serving", None, "canary", "ModelDeployment/credit"),
        ("CanaryRolledBack", None, None, "ModelDeployment/credit"),
        ("Serving", "canary", None, "ModelDeployment/credit"),
    ]
    assert resync.status == after.status


def test_a_full_history_keeps_the_newest_and_settles() -> None:
    old = [history.entry(at(i), "Serving", to=str(i)) for i in range(32)]
    late = history.entry(at(40), "Approved", by="bob")
    stale = history.entry(at(0), "Rejected", by="carol")

    grown = history.merged(old, [late], 32)
    unchanged = history.merged(grown, [late, stale], 32)

    assert len(grown) == 32 and grown[-1] == late and grown[0].time == at(1)
    assert unchanged == grown  # an entry older than the window is never added back


# --- the Model's copy of approvals ---------------------------------------------------------------


def test_the_model_keeps_each_approval_and_rejection_of_its_versions() -> None:
    owner = model(requireApproval=True)
    decided = []
    for number, state in ((1, "Approved"), (2, "Rejected")):
        pending = judged(version(number), owner, T0)
        choice = {"state": state, "by": "alice", "reason": f"{state.lower()} after review"}
        decided.append(judged(with_approval(pending, choice), owner, at(number)))

    status = model_controller.status_for(owner, decided, now=at(10))
    again = model_controller.status_for(
        owner.model_copy(update={"status": status}), decided, now=at(11)
    )

    copied = [(e.action, e.version, e.by, e.reason) for e in status.history or []]
    assert copied == [
        ("VersionApproved", 1, "alice", "approved after review"),
        ("VersionRejected", 2, "alice", "rejected after review"),
    ]
    assert again.history == status.history


def test_a_version_records_the_trained_fairness_and_dataset_of_its_run() -> None:
    run = TrainingRun.model_validate(
        {
            "metadata": {"name": "credit-1", "namespace": "ml", "uid": "u-1"},
            "spec": {"model": "credit", "dataset": {"uri": "pvc://cairn-artifacts/credit.csv"}},
            "status": {
                "artifact": {"uri": "pvc://cairn-artifacts/credit/credit-1", "digest": DIGEST},
                "dataset": {"uri": "pvc://cairn-artifacts/credit.csv", "digest": DIGEST,
                            "rows": 4000, "featureCount": 7, "features": ["age", "income"]},
                "fairness": [SEX.to_dict()],
            },
        }
    )  # fmt: skip

    spec = version_for(run, 1).spec

    assert spec.fairness == [SEX]
    assert spec.source is not None and spec.source.dataset is not None
    assert (spec.source.dataset.rows, spec.source.dataset.feature_count) == (4000, 7)
