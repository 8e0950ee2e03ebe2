"""Monitoring of a ModelDeployment's stable version (spec.monitoring), one step per reconcile: a
window starts with a read of every stable pod's /v2/models/<model>/monitoring and is judged once
it has lasted its duration and counted its rows (monitoring.window). Between the two reads a
reconcile costs nothing, unless the first read missed a ready pod: that pod is read again until
it answers.

The window lives in this process's memory: after a restart of the operator a new one starts,
and the status keeps the last judged window until it is judged.
"""

import dataclasses
import datetime
import json
import logging
import threading

from cairn.analysis.judge import duration_seconds
from cairn.api import Condition, ModelDeployment
from cairn.api.conditions import set_condition
from cairn.api.modeldeployment import STABLE, ModelDeploymentConditionType
from cairn.api.modeldeployment import ModelDeploymentReason as Reason
from cairn.api.monitoring import (
    MonitoringStatus,
    MonitoringVerdict,
    PerformanceMetric,
    PerformanceSettings,
    PerformanceStatus,
)
from cairn.controllers.deployment import readings
from cairn.kube import events, workloads
from cairn.monitoring import drift
from cairn.monitoring.window import Reading, ReadingError, rebase, totals, verdict
from cairn.observability import metrics

Type = ModelDeploymentConditionType
logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Window:
    version: int
    start: datetime.datetime
    at_start: dict[str, Reading]
    # Ready stable pods that the start's read did not reach (a proxy error): each reconcile
    # reads them again until they answer, so they count from then, not from the next window.
    unread: frozenset[str] = frozenset()
    # Stable pods not yet ready at the start: no Service sent them anything before, so all
    # they count is this window's.
    starting: frozenset[str] = frozenset()


_windows: dict[tuple[str, str], Window] = {}
_lock = threading.Lock()


def forget(namespace: str, name: str) -> None:
    with _lock:
        _windows.pop((namespace, name), None)
    metrics.DRIFT.set(namespace, name, None)


def read(
    mdep: ModelDeployment, only: frozenset[str] | None = None
) -> tuple[dict[str, Reading], frozenset[str], frozenset[str]]:
    """Every ready stable pod's counters (or those of the pods `only` names), the ready pods
    that did not answer, and the stable pods not ready yet."""
    path = f"v2/models/{mdep.spec.model}/monitoring"
    found, missed, starting = {}, set(), set()
    for pod, track, ready in readings.serving_pods(mdep):
        if track != STABLE or (only is not None and pod not in only):
            continue
        if not ready:
            starting.add(pod)
            continue
        text = workloads.read_pod_path(mdep.namespace, pod, mdep.spec.port, path)
        if text is None:
            missed.add(pod)
            continue
        try:
            found[pod] = Reading.parse(json.loads(text))
        except (ValueError, ReadingError) as error:
            # It answered, but not with counters: asking again within the window changes
            # nothing, so it waits for the next window like a pod not yet seen.
            logger.warning("%s/%s: pod %s: %s", mdep.namespace, mdep.name, pod, error)
    return found, frozenset(missed), frozenset(starting)


def observe(
    mdep: ModelDeployment, version: int | None, now: datetime.datetime
) -> MonitoringStatus | None:
    """status.monitoring after this reconcile (the current one when nothing is due)."""
    key = (mdep.namespace, mdep.name)
    settings = mdep.spec.monitoring
    current = mdep.status.monitoring if mdep.status else None
    if settings is None or version is None:
        forget(*key)
        return None
    with _lock:
        window = _windows.get(key)
    if window is None or window.version != version:
        with _lock:
            _windows[key] = Window(version, now, *read(mdep))
        if current is not None and current.version == version:
            return current  # the operator restarted: the last judged window stands
        return MonitoringStatus(
            version=version,
            verdict=MonitoringVerdict.COLLECTING,
            message=f"the first window of v{version} is collecting",
            window_start=now,
            windows=0,
        )
    elapsed = (now - window.start).total_seconds() / duration_seconds(settings.window.duration)
    if elapsed < 1:
        if window.unread:
            late, still_unread, _ = read(mdep, only=window.unread)
            started_with = rebase(window.at_start, late, window.start, window.starting)
            with _lock:
                _windows[key] = dataclasses.replace(
                    window, at_start=started_with, unread=still_unread
                )
        return current
    now_read, missed, starting = read(mdep)
    started_with = rebase(window.at_start, now_read, window.start, window.starting)
    if started_with != window.at_start:
        window = dataclasses.replace(window, at_start=started_with, unread=frozenset())
        with _lock:
            _windows[key] = window
    judged = _judge(mdep, window, now_read, version, now, elapsed)
    if judged is None:
        return current  # waiting for rows
    # A pod that went unready (an overloaded probe) keeps the reading of this window's start:
    # the next window counts what it answered since, and none of what earlier windows counted.
    kept = {pod: window.at_start[pod] for pod in starting if pod in window.at_start}
    with _lock:
        _windows[key] = Window(version, now, {**now_read, **kept}, missed, starting)
    judged = judged.model_copy(update={"windows": ((current.windows or 0) if current else 0) + 1})
    _export(mdep, judged)
    return judged


def _judge(
    mdep: ModelDeployment,
    window: Window,
    now_read: dict[str, Reading],
    version: int,
    now: datetime.datetime,
    elapsed: float,
) -> MonitoringStatus | None:
    settings = mdep.spec.monitoring
    assert settings is not None
    unavailable = MonitoringStatus(
        version=version,
        verdict=MonitoringVerdict.UNAVAILABLE,
        window_start=window.start,
        window_end=now,
    )
    if not now_read:
        return unavailable.model_copy(
            update={"message": "no stable pod answered /v2/models/<model>/monitoring"}
        )
    any_reading = next(iter(now_read.values()))
    if any_reading.baseline is None:
        return unavailable.model_copy(
            update={"verdict": MonitoringVerdict.NO_BASELINE, "message": any_reading.reason}
        )
    try:
        counted = totals(window.at_start, now_read, window.start, window.starting)
        if counted is None:
            return None
        return verdict(settings, any_reading.baseline, counted, version, window.start, now, elapsed)
    except ReadingError as error:
        return unavailable.model_copy(update={"message": str(error)})


def _export(mdep: ModelDeployment, status: MonitoringStatus) -> None:
    scores = tuple(
        (f.name, drift.score(f.statistic, f.p_value, f.threshold)) for f in status.features or []
    )
    drifted = (
        status.verdict == MonitoringVerdict.DRIFTED
        if status.verdict in (MonitoringVerdict.DRIFTED, MonitoringVerdict.NO_DRIFT)
        else None
    )
    share = (
        status.drifted_features / status.features_compared
        if status.drifted_features is not None and status.features_compared
        else None
    )
    live = status.performance
    reading = metrics.DriftReading(
        model=mdep.spec.model,
        version=status.version,
        feature_scores=scores,
        drifted=drifted,
        drifted_share=share,
        performance=(live.metric.value, live.value) if live and live.value is not None else None,
    )
    metrics.DRIFT.set(mdep.namespace, mdep.name, reading)


# --- conditions and Events --------------------------------------------------------------------

# The Drifted condition (None: Unknown) of each verdict.
DRIFT_CONDITIONS: dict[MonitoringVerdict, tuple[bool | None, Reason]] = {
    MonitoringVerdict.DRIFTED: (True, Reason.DRIFT_DETECTED),
    MonitoringVerdict.NO_DRIFT: (False, Reason.NO_DRIFT),
    MonitoringVerdict.NOT_ENOUGH_DATA: (None, Reason.NOT_ENOUGH_DATA),
    MonitoringVerdict.NO_BASELINE: (None, Reason.NO_BASELINE),
    MonitoringVerdict.UNAVAILABLE: (None, Reason.MONITORING_UNAVAILABLE),
    MonitoringVerdict.COLLECTING: (None, Reason.COLLECTING),
}


def conditions(
    mdep: ModelDeployment, monitoring: MonitoringStatus | None, current: list[Condition] | None
) -> list[Condition] | None:
    """status.conditions with Drifted and PerformanceDegraded as `monitoring` says; without
    spec.monitoring, without them."""
    generation = mdep.generation
    if monitoring is None or mdep.spec.monitoring is None:
        kept = [c for c in current or [] if c.type not in (Type.DRIFTED, Type.PERFORMANCE_DEGRADED)]
        return kept or None
    state, reason = DRIFT_CONDITIONS[monitoring.verdict]
    message = monitoring.message or monitoring.verdict.value
    found = set_condition(current, Type.DRIFTED, state, reason, message, generation)
    settings = mdep.spec.monitoring.performance
    if settings is None:
        return [c for c in found if c.type != Type.PERFORMANCE_DEGRADED]
    state, reason, message = _performance(settings, monitoring.performance)
    return set_condition(found, Type.PERFORMANCE_DEGRADED, state, reason, message, generation)


def _performance(
    settings: PerformanceSettings, live: PerformanceStatus | None
) -> tuple[bool | None, Reason, str]:
    """PerformanceDegraded: (status, None for Unknown; reason; message)."""
    if live is None or live.value is None:
        rows = live.rows if live else 0
        return (
            None,
            Reason.NOT_ENOUGH_FEEDBACK,
            f"{rows} labelled rows in the window; it needs {settings.min_rows} "
            "(spec.monitoring.performance.minRows): POST labels to /v2/models/<model>/feedback",
        )
    if settings.metric == PerformanceMetric.ACCURACY:
        floor = settings.min if settings.min is not None else 0.0
        said = f"accuracy {live.value:.4g} on {live.rows} labelled rows"
        if live.value < floor:
            return True, Reason.BELOW_MINIMUM, f"{said}, below performance.min {floor:g}"
        return False, Reason.WITHIN_LIMITS, f"{said}, at least {floor:g}"
    ceiling = settings.max if settings.max is not None else float("inf")
    said = f"mean absolute error {live.value:.4g} on {live.rows} labelled rows"
    if live.value > ceiling:
        return True, Reason.ABOVE_MAXIMUM, f"{said}, above performance.max {ceiling:g}"
    return False, Reason.WITHIN_LIMITS, f"{said}, at most {ceiling:g}"


def announce(
    mdep: ModelDeployment, before: list[Condition] | None, after: list[Condition] | None
) -> None:
    """An Event when Drifted or PerformanceDegraded changes status."""
    for kind in (Type.DRIFTED, Type.PERFORMANCE_DEGRADED):
        was = next((c for c in before or [] if c.type == kind), None)
        now = next((c for c in after or [] if c.type == kind), None)
        if now is None or (was is not None and was.status == now.status):
            continue
        if now.status == "True":
            events.warn(mdep, reason=now.reason, message=now.message)
        elif now.status == "False" and was is not None:
            events.info(mdep, reason=now.reason, message=now.message)
