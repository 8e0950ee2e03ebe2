"""Synthetic customer-churn data for the continuous-training example: `python data.py ROWS SEED`
prints ROWS labelled rows as CSV (with the header when SEED is 0).

Every batch comes from the same hidden rule, so a model trained on more rows is better: that is
what the example's dataset trigger retrains on. Rows are made by a seeded random generator: the
same ROWS and SEED always give the same rows. The label, `target`, is 1 for a customer who left.
"""

import csv
import sys

import numpy as np

FEATURES = (
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "late_payments",
    "contract_length",
    "discount",
    "usage_trend",
    "outages",
)
# The hidden rule: a linear score with one interaction, and 8% of labels flipped.
WEIGHTS = np.array([-1.2, 0.9, 1.1, 0.8, -1.0, -0.4, -0.9, 0.6])
FLIPPED = 0.08


def rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, len(FEATURES)))
    score = X @ WEIGHTS + 1.5 * X[:, 2] * X[:, 3] - 0.2
    y = (score > 0).astype(int)
    flip = rng.random(count) < FLIPPED
    return X.round(4), np.where(flip, 1 - y, y)


def main(argv: list[str]) -> None:
    count, seed = int(argv[1]), int(argv[2])
    X, y = rows(count, seed)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if seed == 0:
        writer.writerow([*FEATURES, "target"])
    for features, label in zip(X, y, strict=True):
        writer.writerow([*features, label])


if __name__ == "__main__":
    main(sys.argv)
