"""Which watch events of a ModelDeployment queue a reconcile: new ones, spec changes its status
has not observed and rollout commands; never its own status writes or unrelated annotations."""

from typing import Any

import pytest

from cairn.controllers.deployment.handlers import calls_for_reconcile, commands_of

Body = dict[str, Any]


def deployment(
    generation: int = 2, observed: int | None = 2, annotations: dict[str, str] | None = None
) -> Body:
    return {
        "metadata": {"name": "iris", "generation": generation, "annotations": annotations or {}},
        "spec": {"model": "iris"},
        "status": {"observedGeneration": observed} if observed is not None else {},
    }


def test_every_deployment_of_the_initial_listing_and_every_new_one_is_reconciled() -> None:
    body = deployment()
    assert calls_for_reconcile(None, body, commands_of(body))
    assert calls_for_reconcile("ADDED", body, commands_of(body))


def test_its_own_status_write_and_an_unrelated_annotation_queue_nothing() -> None:
    before = commands_of(deployment())
    assert not calls_for_reconcile("MODIFIED", deployment(), before)
    assert not calls_for_reconcile("MODIFIED", deployment(annotations={"team": "search"}), before)


@pytest.mark.parametrize("observed", [1, None])
def test_a_spec_its_status_has_not_observed_is_reconciled(observed: int | None) -> None:
    body = deployment(generation=2, observed=observed)
    assert calls_for_reconcile("MODIFIED", body, commands_of(body))


@pytest.mark.parametrize("command", ["cairn.dev/promote", "cairn.dev/abort", "cairn.dev/resume"])
def test_a_rollout_command_given_or_given_again_is_reconciled(command: str) -> None:
    before = commands_of(deployment())
    given = deployment(annotations={command: "3"})
    assert calls_for_reconcile("MODIFIED", given, before)
    assert not calls_for_reconcile("MODIFIED", given, commands_of(given))
    assert calls_for_reconcile(
        "MODIFIED", deployment(annotations={command: "4"}), commands_of(given)
    )
