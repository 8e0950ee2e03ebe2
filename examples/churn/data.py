"""Synthetic customer-churn data for the continuous-training example:

    python data.py ROWS SEED [--shifted] [--no-labels]

prints ROWS labelled rows as CSV (with the header when SEED is 0). Every batch comes from the same
hidden rule, so a model trained on more rows is better: that is what the example's dataset trigger
retrains on. Rows are made by a seeded random generator: the same arguments always give the same
rows. The label, `target`, is 1 for a customer who left.

--shifted: the customers of a changed market (shorter tenures, higher charges, more support calls
and falling usage): the same rule labels them, but a model that never saw such customers predicts
them worse. That is what `make demo-drift` sends, and what its retraining learns from.
--no-labels: features only, as requests to the served model carry them.
"""

import argparse
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
# The hidden rule: a linear score with one interaction, premium customers (monthly charges above
# 1.5 standard deviations) who stay whatever they pay, and 8% of labels flipped.
WEIGHTS = np.array([-1.2, 0.9, 1.1, 0.8, -1.0, -0.4, -0.9, 0.6])
FLIPPED = 0.08


# --shifted: tenure -1.2, monthly charges +1.5, support calls +1, usage trend -1.2 (in standard
# deviations of the original population).
SHIFT = np.array([-1.2, 1.5, 1.0, 0.0, 0.0, 0.0, -1.2, 0.0])


def rows(count: int, seed: int, shifted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, len(FEATURES))) + (SHIFT if shifted else 0.0)
    score = X @ WEIGHTS + 1.5 * X[:, 2] * X[:, 3] - 0.2 - 3.0 * np.maximum(0.0, X[:, 1] - 1.5)
    y = (score > 0).astype(int)
    flip = rng.random(count) < FLIPPED
    return X.round(4), np.where(flip, 1 - y, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("--shifted", action="store_true", help="customers of a changed market")
    parser.add_argument("--no-labels", action="store_true", help="features only")
    args = parser.parse_args()
    X, y = rows(args.rows, args.seed, args.shifted)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if args.seed == 0 and not args.no_labels:
        writer.writerow([*FEATURES, "target"])
    for features, label in zip(X, y, strict=True):
        writer.writerow([*features] if args.no_labels else [*features, label])


if __name__ == "__main__":
    main()
