"""The credit example, run as a training pod runs it: the naive model approves fewer women than
the Model's fairness gates allow, the mitigated one does not, and what each run records is what
fairlearn computes offline from the saved model on the same split."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.api.fairness import FairnessGate, FeatureFairness
from cairn.registry import fairness
from tests.support.credit import EXAMPLE, offline_fairness, write_data

GATES = [
    FairnessGate.model_validate(
        {"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 0.1}
    ),
    FairnessGate.model_validate(
        {"metric": "disparateImpactRatio", "sensitiveFeature": "sex", "min": 0.8}
    ),
]


def train(tmp_path: Path, csv: Path, mitigation: str) -> tuple[dict[str, Any], Path]:
    output, log = tmp_path / f"out-{mitigation}", tmp_path / f"log-{mitigation}"
    environ = {name: value for name, value in os.environ.items() if not name.startswith("CAIRN_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "train.py")],
        env={
            **environ,
            "PYTHONPATH": str(Path(cairn.__file__).parents[1]),
            "CAIRN_PARAMS": json.dumps({"mitigation": mitigation}),
            "CAIRN_DATASET_URI": f"file://{csv}",
            "CAIRN_OUTPUT_DIR": str(output),
            "CAIRN_OUTPUT_URI": f"file://{output}",
            "CAIRN_TERMINATION_LOG": str(log),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(log.read_bytes())
    return summary, output


@pytest.mark.parametrize(("mitigation", "fair"), [("none", False), ("reductions", True)])
def test_the_recorded_fairness_is_fairlearns_and_decides_the_gates(
    tmp_path: Path, mitigation: str, fair: bool
) -> None:
    csv = write_data(tmp_path / "credit.csv")

    summary, output = train(tmp_path, csv, mitigation)

    (recorded,) = [FeatureFairness.model_validate(f) for f in summary["fairness"]]
    offline = offline_fairness(csv, output, summary["artifact"]["digest"])
    assert recorded.demographic_parity_difference == offline["demographicParityDifference"]
    assert recorded.disparate_impact_ratio == offline["disparateImpactRatio"]
    assert recorded.equalized_odds_difference == offline["equalizedOddsDifference"]
    for group in recorded.groups:
        assert group.selection_rate == offline["selectionRates"][group.group]
        assert group.count == offline["counts"][group.group]
    passed, results = fairness.judge_all(GATES, [recorded])
    assert passed is fair, [r.message for r in results]
    assert summary["metrics"]["accuracy"] >= 0.75
    assert summary["dataset"]["features"][-1] == "sex"
