"""`cairn card`, pure: every section of the model card from the objects, the same facts in Markdown
and HTML, everything escaped, and what is not documented said with the field that holds it."""

import datetime
import html
import re
from typing import Any

from cairn.api import Model, ModelVersion
from cairn.cli import document
from cairn.cli.card import card

AT = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
DIGEST = "sha256:" + "ab" * 32
SECTIONS = [
    "Model details",
    "Intended use",
    "Factors",
    "Training data",
    "Training parameters",
    "Evaluation: metrics and gates",
    "Fairness (quantitative analysis)",
    "Lineage",
    "Approvals",
    "Serving and rollout history",
    "Ethical considerations",
    "Caveats and recommendations",
]

MODEL = {
    "metadata": {"name": "credit", "namespace": "ml"},
    "spec": {
        "description": "Approves <b>credit</b> | loans",
        "owner": "risk-ml@example.com",
        "intendedUse": "Pre-screening of consumer credit applications.",
        "limitations": "Trained on synthetic data.",
        "ethicalConsiderations": "Sex is a protected attribute.",
        "sensitiveFeatures": ["sex"],
        "policy": {
            "gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.75}],
            "fairness": [
                {"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 0.1}
            ],
            "requireApproval": True,
        },
    },
    "status": {
        "history": [
            {"time": "2026-03-01T10:00:00Z", "action": "AliasMoved", "alias": "production",
             "toVersion": 2, "by": "spec", "reason": "spec.aliases names it"},
        ]
    },
}  # fmt: skip
VERSION = {
    "metadata": {"name": "credit-v2", "namespace": "ml",
                 "creationTimestamp": "2026-03-01T08:00:00Z"},
    "spec": {
        "model": "credit",
        "version": 2,
        "artifact": {"uri": "pvc://cairn-artifacts/credit/credit-2", "digest": DIGEST,
                     "size": 2048, "format": "sklearn-joblib"},
        "source": {
            "run": "credit-fair", "runUid": "u-2", "image": "docker.io/cairn/trainer:dev",
            "imageId": "docker.io/cairn/trainer@" + DIGEST, "codeRevision": "4f1e2d3",
            "params": {"max_dpd": 0.05},
            "dataset": {"uri": "pvc://cairn-artifacts/data/credit.csv", "digest": DIGEST,
                        "rows": 4000, "featureCount": 7,
                        "features": ["age", "income", "sex"]},
            "trigger": {"type": "request", "reason": "new policy", "time": "2026-03-01T07:50:00Z",
                        "continuousTraining": "credit"},
        },
        "metrics": {"accuracy": 0.80125, "f1": 0.8123},
        "fairness": [{
            "sensitiveFeature": "sex", "positiveLabel": "1",
            "demographicParityDifference": 0.04321, "disparateImpactRatio": 0.9345,
            "equalizedOddsDifference": 0.0612, "equalOpportunityDifference": 0.0312,
            "accuracyDifference": 0.0111,
            "groups": [
                {"group": "female", "count": 612, "selectionRate": 0.5507, "accuracy": 0.81,
                 "truePositiveRate": 0.87, "falsePositiveRate": 0.21},
                {"group": "male", "count": 588, "selectionRate": 0.5938, "accuracy": 0.7989,
                 "truePositiveRate": 0.9012, "falsePositiveRate": 0.25},
            ],
        }],
        "approval": {"state": "Approved", "by": "bob@example.com", "reason": "fair & accurate"},
    },
    "status": {
        "phase": "Approved",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                        "message": "the version may be served",
                        "lastTransitionTime": "2026-03-01T09:00:00Z"}],
        "gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.75, "value": 0.80125,
                   "passed": True}],
        "fairnessGates": [{"metric": "demographicParityDifference", "sensitiveFeature": "sex",
                           "max": 0.1, "value": 0.04321, "passed": True}],
        "history": [
            {"time": "2026-03-01T08:00:05Z", "action": "GatesPassed", "to": "PendingApproval",
             "by": "policy", "reason": "2 gate(s) passed"},
            {"time": "2026-03-01T09:00:00Z", "action": "Approved", "from": "PendingApproval",
             "to": "Approved", "by": "bob@example.com", "reason": "fair & accurate"},
            {"time": "2026-03-01T10:00:30Z", "action": "Serving", "to": "stable",
             "by": "ModelDeployment/credit", "reason": "serves it on its stable track"},
        ],
    },
}  # fmt: skip
RUN = {
    "metadata": {"name": "credit-fair", "uid": "u-2"},
    "spec": {"code": {"configMap": {"name": "credit-train"}}},
}
DEPLOYMENT = {
    "metadata": {"name": "credit"},
    "spec": {"model": "credit", "alias": "production"},
    "status": {"stable": {"version": 2}, "url": "http://credit.ml.svc:8080"},
}


def the_card(model: dict[str, Any] | None = MODEL, **version: Any) -> document.Document:
    return card(
        Model.model_validate(model) if model else None,
        ModelVersion.model_validate({**VERSION, **version}),
        RUN,
        [DEPLOYMENT],
        ["production"],
        AT,
    )


def test_the_card_has_every_section_in_the_model_cards_order() -> None:
    found = the_card()

    assert [s.title for s in found.sections] == SECTIONS
    text = document.markdown(found)
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == SECTIONS


def test_the_numbers_are_the_objects() -> None:
    text = document.markdown(the_card())

    for fact in (
        "| accuracy | 0.8013 |", "| Demographic parity difference | 0.04321 |",
        "| Disparate impact ratio | 0.9345 |", "| female | 612 | 0.5507 | 0.81 | 0.87 | 0.21 |",
        "| male | 588 | 0.5938 | 0.7989 | 0.9012 | 0.25 |", "**Rows:** 4000",
        "**Features:** 7", "| max\\_dpd | 0.05 |", "**Code revision:** 4f1e2d3",
        "request: new policy at 2026-03-01 07:50:00 UTC (ContinuousTraining credit)",
        "Approved by bob@example.com: fair & accurate", "| credit | stable | http://credit",
        "| demographicParityDifference for sex (sensitive) | <= 0.1 | 0.04321 | pass |",
        "| 2026-03-01 08:00:05 UTC | GatesPassed | 2 gate(s) passed |", "(1200 rows)",
    ):  # fmt: skip
        assert fact.replace("<", "\\<") in text, fact


def test_sensitive_features_are_marked() -> None:
    text = document.markdown(the_card())

    assert "**Sensitive features:** sex" in text
    assert "age, income, sex (sensitive)" in text
    assert "sex (sensitive): each group" in text


def test_html_is_one_self_contained_escaped_page() -> None:
    page = document.html_page(the_card())

    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"<(link|script|img)\b|https?://(?!credit)", page)  # nothing fetched
    assert "Approves &lt;b&gt;credit&lt;/b&gt; | loans" in page
    assert "<b>credit</b>" not in page
    assert "fair &amp; accurate" in page
    assert "@media print" in page
    for title in SECTIONS:
        assert f"<h2>{html.escape(title)}</h2>" in page


def test_markdown_escapes_what_it_would_interpret() -> None:
    text = document.markdown(the_card())

    assert "Approves \\<b\\>credit\\</b\\> \\| loans" in text


def test_what_nobody_documented_is_said_with_its_field() -> None:
    bare = {"metadata": {"name": "credit"}, "spec": {"policy": {}}}
    unmeasured = {k: v for k, v in VERSION["spec"].items() if k != "fairness"}  # type: ignore[attr-defined]

    text = document.markdown(the_card(bare, spec=unmeasured))

    assert "Set spec.intendedUse on Model credit" in text
    assert "Set spec.sensitiveFeatures on Model credit" in text
    assert "Set spec.limitations on Model credit" in text
    assert "training.log\\_fairness" in text


def test_the_history_tells_when_who_and_why() -> None:
    text = document.markdown(the_card())

    assert "| 2026-03-01 09:00:00 UTC | Approved | bob@example.com | fair & accurate |" in text
    assert "AliasMoved (production: - → 2)" in text
    assert "ModelDeployment/credit" in text
