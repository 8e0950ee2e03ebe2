"""The credit example's fairness, computed again offline: the same CSV, the same split the
example's train.py makes, the saved model's predictions, and fairlearn's own functions. What a
run recorded must equal it."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from fairlearn.metrics import (  # type: ignore[import-untyped]
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from cairn.training import load_model
from cairn.training.datasets import load_dataset
from tests.support.cluster import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples/credit"
ROWS, SEED = 4000, 0


def write_data(path: Path) -> Path:
    """The example's data set, as its README makes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        subprocess.run(
            [sys.executable, str(EXAMPLE / "data.py"), str(ROWS), str(SEED)], stdout=out, check=True
        )
    return path


def offline_fairness(csv: Path, model_dir: Path, digest: str) -> dict[str, Any]:
    """fairlearn's measures for `sex` of the model saved in `model_dir`, on the example's test
    rows of `csv`."""
    data = load_dataset(f"file://{csv}")
    column = data.feature_names.index("sex")
    groups = np.where(data.X[:, column] == 1, "female", "male")
    features = np.delete(data.X, column, axis=1)
    _, X_test, _, y_test, _, g_test = train_test_split(
        features, data.y, groups, test_size=0.3, random_state=0, stratify=data.y
    )
    predicted = load_model(model_dir, expected_digest=digest).estimator.predict(X_test)
    by = {"sensitive_features": g_test}
    return {
        "demographicParityDifference": demographic_parity_difference(y_test, predicted, **by),
        "disparateImpactRatio": demographic_parity_ratio(y_test, predicted, **by),
        "equalizedOddsDifference": equalized_odds_difference(y_test, predicted, **by),
        "selectionRates": {
            group: float(np.mean(predicted[g_test == group] == 1)) for group in ("female", "male")
        },
        "counts": {group: int(np.sum(g_test == group)) for group in ("female", "male")},
    }
