"""Every kind can say on its object that its spec breaks the API (controllers.parsing): a kind
without a way to say it left such objects without any status, reconciled again and again. Bodies
from the watch caches are parsed once per resourceVersion, and the memo holds one parse per
object however often its status is written."""

from pathlib import Path

import yaml

import cairn.api
from cairn.api import Model
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
