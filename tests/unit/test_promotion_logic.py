"""Automatic promotion: the alias moves only to a Ready version that beat its holder on the same
evaluation data; a rolled-back version is never chosen again; a pin in spec.aliases wins."""

import datetime
from typing import Any

from cairn.api import Model, ModelVersion
from cairn.api.model import Promotion
from cairn.controllers.registry import models as model_controller
from cairn.controllers.registry.versions import status_for as version_status
from cairn.registry.promotion import Candidate, holder_after, verdict

POLICY = Promotion(alias="production", metric="f1", min_improvement=0.0)
T = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
DIGEST = "sha256:" + "ab" * 32


def candidate(
    version: int, value: float | None, against: int | None = None, champion: float | None = None
) -> Candidate:
    return Candidate(version, True, value, against, champion)


def test_the_first_ready_version_takes_the_alias_then_each_winner_in_turn() -> None:
    assert holder_after(POLICY, None, [candidate(1, 0.8)], set()) == 1
    chain = [candidate(1, 0.8), candidate(2, 0.85, 1, 0.80), candidate(3, 0.9, 2, 0.84)]
    assert holder_after(POLICY, 1, chain, set()) == 3
    # v3 compared itself with v1, not with v2 which holds the alias: numbers from another run.
    stale = [candidate(2, 0.85, 1, 0.80), candidate(3, 0.99, 1, 0.80)]
    assert holder_after(POLICY, 2, stale, set()) == 2


def test_not_better_a_tie_and_the_minimum_improvement_keep_the_holder() -> None:
    assert holder_after(POLICY, 1, [candidate(2, 0.80, 1, 0.80)], set()) == 1
    assert holder_after(POLICY, 1, [candidate(2, 0.70, 1, 0.80)], set()) == 1
    picky = POLICY.model_copy(update={"min_improvement": 0.05})
    assert holder_after(picky, 1, [candidate(2, 0.84, 1, 0.80)], set()) == 1
    assert holder_after(picky, 1, [candidate(2, 0.86, 1, 0.80)], set()) == 2
    lower = POLICY.model_copy(update={"direction": "minimize"})
    assert holder_after(lower, 1, [candidate(2, 0.3, 1, 0.4)], set()) == 2


def test_rolled_back_and_unready_versions_are_never_chosen() -> None:
    better = candidate(2, 0.9, 1, 0.8)
    assert holder_after(POLICY, 1, [better], {2}) == 1
    unready = Candidate(2, False, 0.9, 1, 0.8)
    assert holder_after(POLICY, 1, [unready], set()) == 1


def test_each_version_says_why_with_both_numbers() -> None:
    def why(c: Candidate, holder: int | None, rolled: set[int] | None = None) -> tuple[bool, str]:
        said = verdict(POLICY, c, holder, rolled or set(), [1])
        return said.promoted, said.reason

    assert why(candidate(2, 0.9, 1, 0.8), 2) == (True, "Promoted")
    assert why(candidate(1, 0.8), 2) == (True, "Superseded")
    assert why(candidate(3, 0.7, 2, 0.8), 2) == (False, "NotBetter")
    # Better, and the alias not moved yet (the Model's reconcile does it next): never NotBetter.
    assert why(candidate(3, 0.9, 2, 0.8), 2) == (False, "Promoting")
    assert why(candidate(3, 0.9, 1, 0.8), 2) == (False, "ChampionChanged")
    assert why(candidate(3, 0.9), 2) == (False, "NotCompared")
    assert why(candidate(3, None, 2, 0.8), 2) == (False, "MetricMissing")
    assert why(candidate(3, 0.9, 2, 0.8), 2, {3}) == (False, "RolledBack")
    message = verdict(POLICY, candidate(3, 0.7, 2, 0.8), 2, set(), []).message
    assert message == ("not better: f1 0.7 against v2's 0.8 on the same evaluation data, -0.1")


def model(**spec: Any) -> Model:
    return Model.model_validate(
        {
            "metadata": {"name": "wine", "namespace": "ml", "generation": 1},
            "spec": {"policy": {"promotion": POLICY.to_dict()}, **spec},
        }
    )


def version(
    number: int, f1: float, against: int | None = None, champion: float = 0.0
) -> ModelVersion:
    spec: dict[str, Any] = {
        "model": "wine",
        "version": number,
        "artifact": {"uri": f"pvc://cairn-artifacts/wine/{number}", "digest": DIGEST},
        "metrics": {"f1": f1},
    }
    if against is not None:
        spec["evaluation"] = {"championVersion": against, "championMetrics": {"f1": champion}}
    found = ModelVersion.model_validate(
        {"metadata": {"name": f"wine-v{number}", "namespace": "ml"}, "spec": spec}
    )
    # Judged Ready by its own controller (no gates, no approval needed).
    return found.model_copy(update={"status": version_status(found, model(), [])})


def test_the_model_moves_the_alias_and_records_it_then_moves_it_back_after_a_rollback() -> None:
    first = model()
    v1, v2 = version(1, 0.80), version(2, 0.90, 1, 0.80)
    status = model_controller.status_for(first, [v1], now=T)
    assert status.aliases == {"production": 1} and status.promoted == 1
    promoted = first.model_copy(update={"status": status})
    status = model_controller.status_for(promoted, [v1, v2], now=T)
    assert status.aliases == {"production": 2}
    last = (status.history or [])[-1]
    assert (last.action, last.from_version, last.to_version, last.by) == (
        "Promoted",
        1,
        2,
        "policy",
    )
    assert "f1 0.9 against 0.8 on the same evaluation data" in (last.reason or "")
    # The canary of v2 is rolled back: the alias goes back to v1, v2 is never chosen again.
    serving = promoted.model_copy(update={"status": status})
    status = model_controller.status_for(serving, [v1, v2], {2: "wine"}, now=T)
    assert status.aliases == {"production": 1} and status.rolled_back == [2]
    back = (status.history or [])[-1]
    assert (back.action, back.from_version, back.to_version) == ("RolledBack", 2, 1)
    again = serving.model_copy(update={"status": status})
    assert model_controller.status_for(again, [v1, v2], {}, now=T).aliases == {"production": 1}


def test_a_pin_in_spec_wins_and_says_the_policy_is_overridden() -> None:
    pinned = model(aliases={"production": 1})
    status = model_controller.status_for(pinned, [version(1, 0.8), version(2, 0.9, 1, 0.8)], now=T)
    assert status.aliases == {"production": 1}
    overridden = next(c for c in status.conditions or [] if c.type == "PromotionOverridden")
    assert overridden.status == "True" and "spec.aliases pins production" in overridden.message


def test_a_version_that_is_not_better_says_so_with_both_numbers() -> None:
    holder = model().model_copy(
        update={"status": model_controller.status_for(model(), [version(1, 0.8)], now=T)}
    )
    worse = ModelVersion.model_validate(version(2, 0.7, 1, 0.8).to_dict())
    status = version_status(worse, holder, [])
    promoted = next(c for c in status.conditions or [] if c.type == "Promoted")
    assert (promoted.status, promoted.reason) == ("False", "NotBetter")
    assert "f1 0.7 against v1's 0.8" in promoted.message
