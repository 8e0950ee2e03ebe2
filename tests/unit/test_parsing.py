"""Every kind can say on its object that its spec breaks the API (controllers.parsing): a kind
without a way to say it left such objects without any status, reconciled again and again. Bodies
from the watch caches are parsed once per resourceVersion, and the memo holds one parse per
object however often its status is written, its nested models sharing their field-name sets."""

from pathlib import Path

import yaml

import cairn
import cairn.api
from cairn.api import Model, ModelVersion
from cairn.controllers import parsing
from cairn.controllers.parsing import REPORTS, cached

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_every_kind_with_a_crd_reports_an_invalid_spec() -> None:
    kinds = {
        yaml.safe_load(crd.read_text())["spec"]["names"]["kind"] for crd in CRDS.glob("*.yaml")
    }
    assert kinds == {kind.kind_name() for kind in REPORTS}
    assert all(getattr(cairn.api, kind) in REPORTS for kind in kinds)


def model_body(name: str, uid: str, version: str, description: str = "") -> dict[str, object]:
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": version},
        "spec": {"description": description},
    }


def test_a_cached_body_is_parsed_once_per_resource_version() -> None:
    first = cached(Model, model_body("m", "uid-parse-once", "1", "first"))
    again = cached(Model, model_body("m", "uid-parse-once", "1", "first"))
    written = cached(Model, model_body("m", "uid-parse-once", "2", "second"))
    assert first is again
    assert written is not None and written is not first
    assert written.spec.description == "second"


def test_the_memo_keeps_one_parse_per_object_whatever_its_writes() -> None:
    before = len(parsing._parsed)
    for version in range(50):
        cached(Model, model_body("churn", "uid-churn", str(version)))
    cached(Model, model_body("other", "uid-other", "1"))
    assert len(parsing._parsed) == before + 2


def version_body(number: int) -> dict[str, object]:
    when = "2026-11-30T17:00:00Z"
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"m-v{number}",
            "namespace": "ns",
            "uid": f"uid-share-{number}",
            "resourceVersion": "1",
        },
        "spec": {
            "model": "m",
            "version": number,
            "artifact": {"uri": f"pvc://claim/m/v{number}", "digest": "sha256:" + "a" * 64},
        },
        "status": {
            "phase": "Approved",
            "conditions": [
                {
                    "type": kind,
                    "status": "True",
                    "reason": kind,
                    "message": kind.lower(),
                    "lastTransitionTime": when,
                }
                for kind in ("Validated", "Approved", "Ready")
            ],
            "history": [{"time": when, "action": "GatesPassed", "to": "Validated", "by": "policy"}],
        },
    }


def test_cached_parses_share_field_sets_and_read_as_fresh_ones() -> None:
    first, second = (cached(ModelVersion, version_body(n)) for n in (1, 2))
    assert first is not None and second is not None and first.status and second.status
    assert first.status.conditions and second.status.conditions
    # One set per combination of names, however many objects and conditions have it.
    assert (
        first.status.conditions[0].model_fields_set is second.status.conditions[2].model_fields_set
    )
    assert first.spec.artifact.model_fields_set is second.spec.artifact.model_fields_set
    for number, parse in ((1, first), (2, second)):
        fresh = ModelVersion.model_validate(version_body(number))
        assert parse == fresh
        assert parse.to_dict() == fresh.to_dict()
        assert parse.status and parse.status.history and fresh.status and fresh.status.history
        assert parse.status.history[0].model_fields_set == fresh.status.history[0].model_fields_set


def test_an_update_of_a_cached_parse_leaves_the_shared_sets_alone() -> None:
    first, second = (cached(ModelVersion, version_body(n)) for n in (3, 4))
    assert first is not None and second is not None and first.status and second.status
    updated = first.status.model_copy(update={"key_metric": "accuracy=0.9"})
    assert "key_metric" in updated.model_fields_set
    assert "key_metric" not in first.status.model_fields_set
    assert "key_metric" not in second.status.model_fields_set


def test_no_operator_code_reads_which_fields_were_set() -> None:
    # The memo's parses share their field-name sets (parsing._share_field_sets): a read of them
    # (exclude_unset, model_fields_set) would see another object's names.
    package = Path(cairn.__file__).parent
    assert (package / "controllers" / "parsing.py").is_file()
    readers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "parsing.py"
        and any(
            word in path.read_text()
            for word in ("exclude_unset", "model_fields_set", "__pydantic_fields_set__")
        )
    ]
    assert readers == []
