"""How likely it is that a canary's breach of a threshold in one interval is chance: one-sided
p-values from the interval's counts (pure).

A threshold broken by a few unlucky requests must not fail a healthy canary, and one broken by
30 % of answers failing must not wait for more intervals. Kayenta judges canaries the same way
(Mann-Whitney U on the two tracks' measurements, at a stated confidence); these are the tests that
fit what the serving pods count:

- a rate against a fixed limit (errorRate max, accuracy min, a latency quantile's max): an exact
  binomial test of the counts against that rate;
- a rate against the stable's (errorRate maxRatioToStable): a two-proportion z-test;
- latency against the stable's (maxRatioToStable): Mann-Whitney U on the two latency histograms
  (each request ranked by its bucket: the test's ties);
- predictions against the stable's (predictionShift): chi-squared homogeneity of the two tracks'
  counts per class or value bin.
"""

import math
from collections.abc import Mapping

import numpy as np
from scipy.stats import binomtest, mannwhitneyu, norm  # type: ignore[import-untyped]

from cairn.monitoring.drift import chi_squared


def rate_above(events: float, trials: float, limit: float) -> float | None:
    """p that `events` of `trials` happen when the true rate is `limit` or less."""
    k, n = round(events), round(trials)
    if n <= 0:
        return None
    if limit <= 0:
        return 0.0 if k > 0 else 1.0
    if limit >= 1:
        return 1.0
    return float(binomtest(min(k, n), n, limit, alternative="greater").pvalue)


def rate_below(events: float, trials: float, limit: float) -> float | None:
    """p that `events` of `trials` happen when the true rate is `limit` or more."""
    k, n = round(events), round(trials)
    if n <= 0:
        return None
    if limit >= 1:
        return 0.0 if k < n else 1.0
    if limit <= 0:
        return 1.0
    return float(binomtest(min(k, n), n, limit, alternative="less").pvalue)


def rate_above_ratio(
    canary_events: float,
    canary_trials: float,
    stable_events: float,
    stable_trials: float,
    ratio: float,
) -> float | None:
    """p that the canary's rate exceeds `ratio` times the stable's by chance alone (one-sided
    two-proportion z-test)."""
    if canary_trials <= 0 or stable_trials <= 0:
        return None
    canary, stable = canary_events / canary_trials, stable_events / stable_trials
    difference = canary - ratio * stable
    variance = canary * (1 - canary) / canary_trials
    variance += ratio * ratio * stable * (1 - stable) / stable_trials
    if variance <= 0:
        return 0.0 if difference > 0 else 1.0
    return float(norm.sf(difference / math.sqrt(variance)))


def _ranked(buckets: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """A cumulative histogram's bounds and its count per bucket."""
    bounds = sorted((float(le), count) for le, count in buckets.items())
    counts, below = [], 0.0
    for _, cumulative in bounds:
        counts.append(max(0.0, cumulative - below))
        below = cumulative
    return [bound for bound, _ in bounds], counts


def slower(canary: Mapping[str, float], stable: Mapping[str, float]) -> float | None:
    """p that the canary's latencies are no greater than the stable's (Mann-Whitney U, one-sided,
    on the bucket each request fell in)."""
    bounds = sorted({float(le) for le in (*canary, *stable)})
    if not bounds:
        return None
    index = {bound: i for i, bound in enumerate(bounds)}

    def samples(buckets: Mapping[str, float]) -> np.ndarray:
        found, counts = _ranked(buckets)
        return np.repeat([index[b] for b in found], [round(c) for c in counts])

    x, y = samples(canary), samples(stable)
    if len(x) == 0 or len(y) == 0 or len(set(x.tolist()) | set(y.tolist())) < 2:
        return None if len(x) == 0 or len(y) == 0 else 1.0
    return float(mannwhitneyu(x, y, alternative="greater").pvalue)


def over_latency(buckets: Mapping[str, float], limit: float, quantile: float) -> float | None:
    """p that the `quantile` latency is at most `limit` (binomial: the requests surely slower
    than the limit, those in buckets above it, against 1 - quantile of all)."""
    bounds, counts = _ranked(buckets)
    total = sum(counts)
    if total <= 0:
        return None
    # A request is surely slower than the limit when its bucket starts above it.
    above = sum(
        count
        for bound, count, lower in zip(bounds, counts, [0.0, *bounds], strict=False)
        if lower >= limit
    )
    return rate_above(above, total, 1 - quantile)


def shifted(canary: Mapping[str, float], stable: Mapping[str, float]) -> float | None:
    """p that the two tracks' predictions come from one distribution (chi-squared)."""
    keys = sorted(set(canary) | set(stable))
    if not keys or not sum(canary.values()) or not sum(stable.values()):
        return None
    _, p = chi_squared([stable.get(k, 0.0) for k in keys], [canary.get(k, 0.0) for k in keys])
    return p
