"""Every kind can say on its object that its spec breaks the API (controllers.parsing): a kind
without a way to say it left such objects without any status, reconciled again and again."""

from pathlib import Path

import yaml

import cairn.api
from cairn.controllers.parsing import REPORTS

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_every_kind_with_a_crd_reports_an_invalid_spec() -> None:
    kinds = {
        yaml.safe_load(crd.read_text())["spec"]["names"]["kind"] for crd in CRDS.glob("*.yaml")
    }
    assert kinds == {kind.kind_name() for kind in REPORTS}
    assert all(getattr(cairn.api, kind) in REPORTS for kind in kinds)
