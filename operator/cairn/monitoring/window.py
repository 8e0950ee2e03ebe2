"""A monitoring window: what the serving pods counted between two reads of their
/v2/models/<model>/monitoring, and the verdict on it.

The pods' counters only grow, so a window is the difference between the reads at its start and
at its end. A pod whose counters started again (a new `instance`: it restarted, or is a new pod)
contributes everything it counted, if it started within the window or was not ready yet at
its start (`starting`: no Service sent it anything before); a pod first seen in the middle of a
window (or seen restarted), started before it, counts from that first reading on (`rebase`):
what it counted before cannot be told apart from earlier traffic.
"""

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cairn.api.monitoring import (
    FEATURES_SHOWN_MAX,
    FeatureDrift,
    Monitoring,
    MonitoringStatus,
    MonitoringVerdict,
    PerformanceMetric,
    PerformanceStatus,
)
from cairn.monitoring import drift
from cairn.monitoring.profile import Histogram, Profile, ProfileError

# A window that has not reached its rows waits, up to this many durations.
WAIT_DURATIONS = 10


class ReadingError(ValueError):
    """A /monitoring answer that cannot be read."""


@dataclasses.dataclass(frozen=True)
class Reading:
    """One pod's /monitoring answer: counts of every feature and of the predictions (the last
    entry of each: missing values), and the feedback scores, since `started`."""

    instance: str
    started: datetime.datetime
    rows: int
    features: tuple[NDArray[np.int64], ...]
    prediction: NDArray[np.int64] | None
    feedback: tuple[int, int, float]  # labelled rows, correct rows, sum of absolute errors
    baseline: Profile | None
    reason: str | None

    @classmethod
    def parse(cls, raw: Any) -> "Reading":
        try:
            baseline = Profile.from_dict(raw["baseline"]) if raw.get("baseline") else None
            features = tuple(
                np.asarray([*f["counts"], f.get("missing", 0)], dtype=np.int64)
                for f in raw.get("features") or []
            )
            predicted = raw.get("prediction")
            prediction = (
                np.asarray([*predicted["counts"], predicted.get("missing", 0)], dtype=np.int64)
                if predicted
                else None
            )
            scores = raw.get("feedback") or {}
            return cls(
                instance=str(raw["instance"]),
                started=datetime.datetime.fromisoformat(str(raw["startedAt"])),
                rows=int(raw.get("rows") or 0),
                features=features,
                prediction=prediction,
                feedback=(
                    int(scores.get("matchedRows") or 0),
                    int(scores.get("correctRows") or 0),
                    float(scores.get("absoluteError") or 0.0),
                ),
                baseline=baseline,
                reason=raw.get("reason"),
            )
        except (KeyError, TypeError, ValueError, ProfileError) as error:
            raise ReadingError(f"an unreadable /monitoring answer: {error}") from None


@dataclasses.dataclass(frozen=True)
class Totals:
    rows: int
    features: tuple[NDArray[np.int64], ...]
    prediction: NDArray[np.int64] | None
    feedback: tuple[int, int, float]


def _minus(now: Reading, before: Reading | None) -> Totals:
    if before is None:
        return Totals(now.rows, now.features, now.prediction, now.feedback)
    prediction = (
        now.prediction - before.prediction
        if now.prediction is not None and before.prediction is not None
        else now.prediction
    )
    return Totals(
        now.rows - before.rows,
        tuple(a - b for a, b in zip(now.features, before.features, strict=True)),
        prediction,
        (
            now.feedback[0] - before.feedback[0],
            now.feedback[1] - before.feedback[1],
            now.feedback[2] - before.feedback[2],
        ),
    )


def rebase(
    at_start: Mapping[str, Reading],
    now: Mapping[str, Reading],
    start: datetime.datetime,
    starting: frozenset[str] = frozenset(),
) -> dict[str, Reading]:
    """The window's starting readings, with pods that `now` shows for the first time (or with new
    counters) but that started before the window, unless they were `starting` (not ready) at its
    start: they count from this reading on. Without it a window whose first read missed a pod (a
    proxy error) would wait forever for a pod that started within it."""
    fresh = {
        pod: reading
        for pod, reading in now.items()
        if reading.started < start
        and (pod not in at_start or at_start[pod].instance != reading.instance)
        and not (pod not in at_start and pod in starting)
    }
    return {**at_start, **fresh}


def totals(
    at_start: Mapping[str, Reading],
    now: Mapping[str, Reading],
    start: datetime.datetime,
    starting: frozenset[str] = frozenset(),
) -> Totals | None:
    """What every pod counted since the window's start (all of it for a pod that started within
    the window, or was `starting` at its start); None when no pod counted anything."""
    parts: list[Totals] = []
    for pod, reading in now.items():
        before = at_start.get(pod)
        if before is not None and before.instance == reading.instance:
            parts.append(_minus(reading, before))
        elif reading.started >= start or (before is None and pod in starting):
            parts.append(_minus(reading, None))
    if not parts:
        return None
    widths = {len(p.features) for p in parts}
    if len(widths) != 1:
        raise ReadingError("the pods count different features: they serve different versions")
    predictions = [p.prediction for p in parts if p.prediction is not None]
    return Totals(
        rows=sum(p.rows for p in parts),
        features=tuple(np.sum([p.features[i] for p in parts], axis=0) for i in range(widths.pop())),
        prediction=np.sum(predictions, axis=0) if predictions else None,
        feedback=(
            sum(p.feedback[0] for p in parts),
            sum(p.feedback[1] for p in parts),
            sum(p.feedback[2] for p in parts),
        ),
    )


def _histogram(reference: Histogram, counts: NDArray[np.int64]) -> Histogram:
    return reference.with_counts(counts[:-1].tolist(), int(counts[-1]))


def _status_of(verdict: drift.Verdict) -> FeatureDrift:
    return FeatureDrift(
        name=verdict.name,
        test=verdict.test,
        statistic=round(verdict.statistic, 6),
        p_value=verdict.p_value,
        threshold=verdict.threshold,
        drifted=verdict.drifted,
    )


def performance(settings: Monitoring, counted: Totals) -> PerformanceStatus | None:
    chosen = settings.performance
    if chosen is None:
        return None
    rows, correct, absolute = counted.feedback
    if rows < chosen.min_rows:
        return PerformanceStatus(metric=chosen.metric, value=None, rows=rows)
    value = correct / rows if chosen.metric == PerformanceMetric.ACCURACY else absolute / rows
    return PerformanceStatus(metric=chosen.metric, value=round(value, 6), rows=rows)


def verdict(
    settings: Monitoring,
    baseline: Profile,
    counted: Totals,
    version: int,
    start: datetime.datetime,
    now: datetime.datetime,
    elapsed_windows: float,
) -> MonitoringStatus | None:
    """The window's status once it is due: at least its duration (`elapsed_windows` >= 1) and
    its rows, or WAIT_DURATIONS durations without them (NotEnoughData). None: not yet."""
    minimum = settings.window.min_rows
    if elapsed_windows < 1 or (counted.rows < minimum and elapsed_windows < WAIT_DURATIONS):
        return None
    base = MonitoringStatus(
        version=version,
        verdict=MonitoringVerdict.NOT_ENOUGH_DATA,
        window_start=start,
        window_end=now,
        rows=counted.rows,
        performance=performance(settings, counted),
    )
    if counted.rows < minimum:
        return base.model_copy(
            update={
                "message": f"{counted.rows} rows in {elapsed_windows:.0f} windows' time; a "
                f"window needs {minimum} (spec.monitoring.window.minRows): neither drift nor "
                "its absence can be told"
            }
        )
    if len(counted.features) != len(baseline.features):
        raise ReadingError("the pods count other features than the baseline profiles")
    current = [
        _histogram(h, c) for (_, h), c in zip(baseline.features, counted.features, strict=True)
    ]
    predicted = (
        _histogram(baseline.prediction, counted.prediction)
        if baseline.prediction is not None and counted.prediction is not None
        else None
    )
    settings_drift = settings.drift
    report = drift.judge(
        baseline.features,
        current,
        reference_prediction=baseline.prediction,
        current_prediction=predicted,
        test=settings_drift.test,
        threshold=settings_drift.threshold,
        drift_share=settings_drift.drift_share,
    )
    ranked = sorted(report.features, key=lambda v: v.score, reverse=True)
    drifted = report.drifted
    shown = ", ".join(f"{v.name} ({_said(v)})" for v in sorted(drifted, key=lambda v: -v.score)[:5])
    share = f"{len(drifted)} of {len(report.features)} features drifted"
    if report.dataset_drifted:
        chosen, message = MonitoringVerdict.DRIFTED, f"{share}: {shown}"
    else:
        chosen = MonitoringVerdict.NO_DRIFT
        message = share + (f" ({shown}), under spec.monitoring.drift.driftShare" if drifted else "")
    return base.model_copy(
        update={
            "verdict": chosen,
            "message": message,
            "drifted_features": len(drifted),
            "features_compared": len(report.features),
            "features": [_status_of(v) for v in ranked[:FEATURES_SHOWN_MAX]],
            "prediction": _status_of(report.prediction) if report.prediction else None,
        }
    )


def _said(verdict: drift.Verdict) -> str:
    if verdict.p_value is not None:
        return f"p={verdict.p_value:.2g}"
    return f"{verdict.test}={verdict.statistic:.3g}"
