"""Whether a window of production data drifted from the training data, feature by feature.

Both sides are counts in the same bins (monitoring.profile), plus a bin for missing values, so a
feature that starts arriving empty drifts too. The defaults follow Evidently's data-drift preset
(https://docs.evidentlyai.com/metrics/explainer_drift), which picks the test by the size of the
window:

- up to SMALL_WINDOW_ROWS rows: a chi-squared test of homogeneity on the two rows of counts,
  drifted when p < 0.05 divided by the number of features compared (Bonferroni: with 13
  features and no drift at all, a plain 0.05 would call some feature drifted in half the
  windows);
- above it, where a test finds any difference significant: a distance. Numeric features use the
  population stability index, drifted at PSI >= 0.2 (the usual reading: < 0.1 no change,
  0.1-0.2 moderate, >= 0.2 significant; Siddiqi, Credit Risk Scorecards, 2006; Yurdakul, 2018);
  categorical features use the Jensen-Shannon distance (base 2, in [0, 1]), drifted at >= 0.1,
  Evidently's threshold.

The data set drifted when at least DRIFT_SHARE of its features did (Evidently's default, 0.5).
"""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import jensenshannon  # type: ignore[import-untyped]
from scipy.stats import chi2_contingency  # type: ignore[import-untyped]

from cairn.api.monitoring import DriftTest
from cairn.monitoring.profile import Histogram

SMALL_WINDOW_ROWS = 1000
ALPHA = 0.05
PSI_THRESHOLD = 0.2
JENSEN_SHANNON_THRESHOLD = 0.1
DRIFT_SHARE = 0.5
# A bin empty on one side would make PSI infinite: proportions are floored at this.
PSI_FLOOR = 1e-4


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One feature (or the predictions): the test, its statistic, and whether it drifted.
    `threshold`: the p-value below which (chi-squared) or the distance from which it drifts."""

    name: str
    test: DriftTest
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None

    @property
    def score(self) -> float:
        return score(self.statistic, self.p_value, self.threshold)


def score(statistic: float, p_value: float | None, threshold: float) -> float:
    """How far past (>= 1) or short of (< 1) its threshold a test is, to rank features by: the
    statistic over the threshold, or for a p-value log p over log of the significance level."""
    if p_value is not None:
        return math.log(max(p_value, 1e-300)) / math.log(threshold) if p_value < 1 else 0.0
    return statistic / threshold if threshold else 0.0


@dataclasses.dataclass(frozen=True)
class Report:
    rows: int
    features: list[Verdict]
    prediction: Verdict | None
    drift_share: float

    @property
    def drifted(self) -> list[Verdict]:
        return [v for v in self.features if v.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def dataset_drifted(self) -> bool:
        return bool(self.features) and self.drifted_share >= self.drift_share


def with_missing(histogram: Histogram) -> NDArray[np.float64]:
    return np.asarray([*histogram.counts, histogram.missing], dtype=np.float64)


def chi_squared(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Chi-squared test that both rows of counts come from one distribution: (statistic, p)."""
    table = np.vstack([np.asarray(reference, float), np.asarray(current, float)])
    table = table[:, table.sum(axis=0) > 0]  # bins empty on both sides say nothing
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _proportions(counts: ArrayLike) -> NDArray[np.float64]:
    values = np.asarray(counts, float)
    total = values.sum()
    return values / total if total else values


def psi(reference: ArrayLike, current: ArrayLike) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r)."""
    r = np.maximum(_proportions(reference), PSI_FLOOR)
    c = np.maximum(_proportions(current), PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(reference: ArrayLike, current: ArrayLike) -> float:
    """Jensen-Shannon distance, base 2: 0 for equal distributions, 1 for disjoint ones."""
    r, c = _proportions(reference), _proportions(current)
    if not r.sum() or not c.sum():
        return 0.0
    return float(jensenshannon(r, c, base=2))


def choose(test: DriftTest, rows: int, histogram: Histogram) -> DriftTest:
    if test != DriftTest.AUTO:
        return test
    if rows <= SMALL_WINDOW_ROWS:
        return DriftTest.CHI_SQUARED
    return DriftTest.PSI if histogram.kind == "numeric" else DriftTest.JENSEN_SHANNON


def compare(
    name: str,
    reference: Histogram,
    current: Histogram,
    test: DriftTest = DriftTest.AUTO,
    threshold: float | None = None,
    tests_in_family: int = 1,
) -> Verdict:
    """One feature's verdict. `tests_in_family`: how many features are tested together (for
    the Bonferroni correction of chi-squared); `threshold` overrides the test's default."""
    chosen = choose(test, current.total, reference)
    ref, cur = with_missing(reference), with_missing(current)
    if chosen == DriftTest.CHI_SQUARED:
        alpha = (threshold if threshold is not None else ALPHA) / max(1, tests_in_family)
        statistic, p = chi_squared(ref, cur)
        return Verdict(name, chosen, statistic, alpha, p < alpha, p_value=p)
    if chosen == DriftTest.PSI:
        limit = threshold if threshold is not None else PSI_THRESHOLD
        value = psi(ref, cur)
        return Verdict(name, chosen, value, limit, value >= limit)
    limit = threshold if threshold is not None else JENSEN_SHANNON_THRESHOLD
    value = jensen_shannon(ref, cur)
    return Verdict(name, chosen, value, limit, value >= limit)


def judge(
    reference: Sequence[tuple[str, Histogram]],
    current: Sequence[Histogram],
    *,
    reference_prediction: Histogram | None = None,
    current_prediction: Histogram | None = None,
    test: DriftTest = DriftTest.AUTO,
    threshold: float | None = None,
    drift_share: float = DRIFT_SHARE,
) -> Report:
    """Every feature of a window (`current`, in the reference's order) against the baseline."""
    rows = max((h.total for h in current), default=0)
    verdicts = [
        compare(name, ref, cur, test, threshold, tests_in_family=len(reference))
        for (name, ref), cur in zip(reference, current, strict=True)
    ]
    prediction = (
        compare("prediction", reference_prediction, current_prediction, test, threshold)
        if reference_prediction is not None and current_prediction is not None
        else None
    )
    return Report(rows, verdicts, prediction, drift_share)
