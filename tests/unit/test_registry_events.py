"""Which watch events of Models and ModelVersions reconcile what: new objects and unobserved specs
reconcile, the controllers' own status writes do not, and a registration's write of a Model's
latestVersion does not judge every version of the Model again."""

import asyncio
import copy
from typing import Any, cast

import kopf
import pytest

from cairn.api import Model
from cairn.controllers.observed import calls_for_reconcile, spec_unobserved
from cairn.controllers.parsing import cached
from cairn.controllers.registry import handlers
from cairn.controllers.registry.models import reconcile_model, resync_model
from cairn.controllers.registry.versions import model_inputs as digest
from cairn.controllers.registry.versions import resync_version

Body = dict[str, Any]


def model(generation: int = 1, observed: int | None = 1, **status: Any) -> Body:
    held: Body = {"latestVersion": 3, **status}
    if observed is not None:
        held["observedGeneration"] = observed
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "iris", "namespace": "ml", "generation": generation},
        "spec": {"policy": {"promotion": {"alias": "production", "metric": "accuracy"}}},
        "status": held,
    }


@pytest.mark.parametrize(
    ("type_", "body", "expected"),
    [
        (None, model(), True),  # kopf's initial listing: first seen by this process
        ("ADDED", model(), True),
        ("MODIFIED", model(generation=2, observed=1), True),  # spec.approval changed, say
        ("MODIFIED", model(observed=None), True),  # no status written yet
        ("MODIFIED", model(), False),  # its own status write
        ("DELETED", model(generation=2, observed=1), False),
    ],
)
def test_which_events_call_for_a_reconcile(type_: str | None, body: Body, expected: bool) -> None:
    assert calls_for_reconcile(type_, body) is expected


def test_an_object_without_status_has_an_unobserved_spec() -> None:
    assert spec_unobserved({"metadata": {"generation": 1}})
    assert not spec_unobserved({"metadata": {"generation": 4}, "status": {"observedGeneration": 4}})


def test_model_inputs_ignore_what_every_registration_writes() -> None:
    before = model(
        promoted=2, history=[{"time": "2026-11-30T10:00:00Z", "action": "Promoted", "toVersion": 2}]
    )
    after = copy.deepcopy(before)
    after["status"]["latestVersion"] = 4
    after["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Ready",
            "message": "4 versions",
            "lastTransitionTime": "2026-11-30T10:00:00Z",
        }
    ]
    after["metadata"]["resourceVersion"] = "99"
    assert cached(Model, after) is not None  # what versions read: a Model that parses
    assert model_inputs(after) == model_inputs(before)


def model_inputs(body: Body) -> int:
    return digest(cached(Model, body))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["metadata"].update(generation=2),  # the policy changed
        lambda m: m["status"].update(promoted=3),  # the policy moved its alias
        lambda m: m["status"].update(rolledBack=[2]),
        lambda m: m["status"]["history"].append(
            {"time": "2026-11-30T10:00:00Z", "action": "Promoted", "toVersion": 3}
        ),
    ],
)
def test_model_inputs_follow_what_versions_read(change: Any) -> None:
    before = model(
        promoted=2, history=[{"time": "2026-11-30T10:00:00Z", "action": "Promoted", "toVersion": 2}]
    )
    after = copy.deepcopy(before)
    change(after)
    assert cached(Model, after) is not None
    assert model_inputs(after) != model_inputs(before)


class Calls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.resynced: list[str] = []
        self.reconciled: list[str] = []
        monkeypatch.setattr(
            handlers, "_resync_versions", lambda namespace, name: self.resynced.append(name)
        )
        monkeypatch.setattr(handlers, "enqueue", self.enqueued)
        monkeypatch.setattr(handlers, "_inputs_seen", {})

    def enqueued(self, reconcile: Any, namespace: str, name: str) -> None:
        assert reconcile is reconcile_model, reconcile
        self.reconciled.append(name)

    def event(self, type_: str | None, body: Body) -> tuple[int, int]:
        """(versions looked at again, Model reconciled) for one event."""
        before = len(self.resynced), len(self.reconciled)
        handler: Any = handlers.on_model_event  # kopf's decorator types it for kopf's own call
        asyncio.run(
            handler(
                namespace="ml", name="iris", type=type_, body=kopf.Body(cast(kopf.RawBody, body))
            )
        )
        return len(self.resynced) - before[0], len(self.reconciled) - before[1]


def test_a_models_events_judge_its_versions_again_only_when_their_inputs_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = Calls(monkeypatch)
    first = model()
    assert calls.event(None, first) == (1, 1)  # first seen: everything

    registered = copy.deepcopy(first)
    registered["status"]["latestVersion"] = 4
    assert calls.event("MODIFIED", registered) == (0, 0)  # a registration's write

    promoted = copy.deepcopy(registered)
    promoted["status"]["promoted"] = 4
    assert calls.event("MODIFIED", promoted) == (1, 0)  # the policy moved its alias

    edited = copy.deepcopy(promoted)
    edited["metadata"]["generation"] = 2
    assert calls.event("MODIFIED", edited) == (1, 1)  # a new policy: judge, then resolve

    observed = copy.deepcopy(edited)
    observed["status"]["observedGeneration"] = 2
    assert calls.event("MODIFIED", observed) == (0, 0)  # the Model's own status write

    assert calls.event("DELETED", observed) == (1, 0)  # its versions lost their Model
    assert calls.event("ADDED", observed) == (1, 1)  # created again under the same name


def deployment(**status: Any) -> Body:
    return {
        "metadata": {"name": "iris-prod", "namespace": "ml", "generation": 1},
        "spec": {"model": "iris", "alias": "production"},
        "status": status,
    }


def test_a_deployments_events_look_again_at_the_versions_whose_role_changed_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queued: list[tuple[Any, str]] = []
    monkeypatch.setattr(
        handlers, "enqueue", lambda reconcile, namespace, name: queued.append((reconcile, name))
    )
    monkeypatch.setattr(handlers, "_serving_seen", {})

    def event(type_: str | None, body: Body) -> set[str]:
        queued.clear()
        handler: Any = handlers.on_deployment_event
        asyncio.run(
            handler(
                namespace="ml",
                name="iris-prod",
                spec=kopf.Body(cast(kopf.RawBody, body)).spec,
                type=type_,
                body=kopf.Body(cast(kopf.RawBody, body)),
            )
        )
        assert (resync_model, "iris") in queued or type_ is None
        return {name for reconcile, name in queued if reconcile is resync_version}

    stable = {"stable": {"version": 3}}
    assert event(None, deployment(**stable)) == set()  # first seen: the resyncs cover it
    assert event("MODIFIED", deployment(**stable, phase="Available")) == set()
    canary = {**stable, "canary": {"version": 4}}
    assert event("MODIFIED", deployment(**canary)) == {"iris-v4"}
    assert event("MODIFIED", deployment(stable={"version": 4})) == {"iris-v3", "iris-v4"}
    assert event("DELETED", deployment(stable={"version": 4})) == {"iris-v4"}
