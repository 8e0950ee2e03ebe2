"""Synthetic credit-approval data with a sensitive attribute, for the governance example:
`python data.py ROWS SEED` prints ROWS labelled applications as CSV, with its header.

Each applicant has an age, an income (in thousands), years employed, a debt-to-income ratio,
late payments in the last two years, open credit lines, and `sex` (1 female, 0 male, half each).
The label `target` is 1 when the loan was approved in the past. Two biases are built in, as in
real lending histories:

- a pay gap: women's incomes are drawn 15% lower, and they have about 2.5 fewer years employed
  (career breaks), so income and tenure are proxies for sex;
- biased past decisions: the approval score of a woman was lowered (by 0.5 on a scale where one
  late payment costs 0.7) whatever her finances.

A model trained on these decisions learns to approve fewer women even with `sex` left out of
its features. Rows come from a seeded generator: the same ROWS and SEED give the same rows.
"""

import csv
import sys

import numpy as np

COLUMNS = (
    "age",
    "income",
    "years_employed",
    "debt_ratio",
    "late_payments",
    "credit_lines",
    "sex",
    "target",
)
PAY_GAP = 0.85  # women's incomes, relative to men's
CAREER_BREAK_YEARS = 2.5
PAST_BIAS = 0.5  # taken off a woman's approval score


def rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    female = (rng.random(count) < 0.5).astype(int)
    age = rng.integers(21, 70, count)
    income = np.exp(rng.normal(np.log(52), 0.35, count)) * np.where(female == 1, PAY_GAP, 1.0)
    years = np.clip(rng.normal((age - 21) * 0.45, 3, count) - CAREER_BREAK_YEARS * female, 0, None)
    debt = rng.beta(2, 5, count)
    late = rng.poisson(0.8, count)
    lines = rng.integers(1, 12, count)
    score = (
        0.06 * (income - 45)
        - 4.0 * (debt - 0.3)
        + 0.06 * years
        - 0.7 * late
        + 0.05 * lines
        - PAST_BIAS * female
        + rng.normal(0, 1.0, count)
    )
    approved = (score > 0).astype(int)
    return np.column_stack(
        [age, income.round(2), years.round(1), debt.round(3), late, lines, female, approved]
    )


def main(argv: list[str]) -> None:
    count, seed = int(argv[1]), int(argv[2])
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(count, seed):
        writer.writerow([f"{value:g}" for value in row])


if __name__ == "__main__":
    main(sys.argv)
