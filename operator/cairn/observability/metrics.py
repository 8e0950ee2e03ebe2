"""The operator's Prometheus metrics, in a registry of their own (observability.server serves it).

Controllers call the typed functions below rather than the prometheus objects, so every label
takes one of a few known values: no label names an object, and the number of series stays
bounded however many runs, versions and deployments there are. Label sets known in advance are
created at import, so their series exist at 0 and rate() works from the first scrape.
"""

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Literal, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cairn import __version__

Kind = Literal["TrainingRun", "Model", "ModelVersion", "ModelDeployment", "ContinuousTraining"]
Result = Literal["success", "error"]
TrainingResult = Literal["succeeded", "failed"]
Outcome = Literal["promoted", "rolled_back", "aborted"]
Verdict = Literal["Pass", "Fail", "Inconclusive"]
TriggerType = Literal["schedule", "dataset", "code", "request", "condition"]
TriggerOutcome = Literal["started", "skipped", "missed"]

PREFIX = "cairn_operator_"
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From a one-minute toy model to a day of training.
TRAINING_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
# Canary rollouts last from a few pauses and analysis intervals to hours of baking.
ROLLOUT_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200)
# A scheduled run starts this long after its schedule time: seconds, unless the operator was down.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)

REGISTRY = CollectorRegistry(auto_describe=True)
# The operator process's CPU, memory and file descriptors, and the Python it runs on.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

BUILD = Info("cairn_operator_build", "The running operator's version", registry=REGISTRY)
BUILD.info({"version": __version__})

RECONCILES = Counter(
    "cairn_operator_reconciles",
    "Reconciles by kind of object and result (error: the reconcile raised and will be retried)",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "cairn_operator_reconcile_duration_seconds",
    "Time one reconcile took, by kind of object",
    ["kind"],
    buckets=RECONCILE_BUCKETS,
    registry=REGISTRY,
)
TRAINING_DURATION = Histogram(
    "cairn_operator_training_duration_seconds",
    "Time from a TrainingRun's Job starting to the run succeeding or failing, by result",
    ["result"],
    buckets=TRAINING_BUCKETS,
    registry=REGISTRY,
)
VERSIONS_REGISTERED = Counter(
    "cairn_operator_model_versions_registered",
    "ModelVersions the operator registered from succeeded TrainingRuns, by namespace",
    ["namespace"],
    registry=REGISTRY,
)
ROLLOUTS = Counter(
    "cairn_operator_rollouts",
    "Canary rollouts finished, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
ROLLOUT_DURATION = Histogram(
    "cairn_operator_rollout_duration_seconds",
    "Time from a canary rollout's start to its outcome",
    ["outcome"],
    buckets=ROLLOUT_BUCKETS,
    registry=REGISTRY,
)
ANALYSIS_VERDICTS = Counter(
    "cairn_operator_analysis_verdicts",
    "Canary analysis intervals judged, by verdict",
    ["verdict"],
    registry=REGISTRY,
)
TRIGGERS = Counter(
    "cairn_operator_triggers",
    "ContinuousTraining triggers, by type and outcome (started a run, skipped, or a schedule "
    "time missed)",
    ["type", "outcome"],
    registry=REGISTRY,
)
WORK_QUEUE_DEPTH = Gauge(
    "cairn_operator_work_queue_depth",
    "Reconciles asked for by watch events and waiting for a worker thread",
    registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    "cairn_operator_schedule_lag_seconds",
    "Time from a schedule time to the start of its run",
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)

for _kind in get_args(Kind):
    RECONCILE_DURATION.labels(_kind)
    for _result in get_args(Result):
        RECONCILES.labels(_kind, _result)
for _training in get_args(TrainingResult):
    TRAINING_DURATION.labels(_training)
for _outcome in get_args(Outcome):
    ROLLOUTS.labels(_outcome)
    ROLLOUT_DURATION.labels(_outcome)
for _verdict in get_args(Verdict):
    ANALYSIS_VERDICTS.labels(_verdict)
for _trigger in get_args(TriggerType):
    for _trigger_outcome in get_args(TriggerOutcome):
        TRIGGERS.labels(_trigger, _trigger_outcome)


Counts = Mapping[tuple[str, ...], int]


class ObservedGauge(Collector):
    """A gauge computed at scrape time from counts the operator keeps in memory (a kopf index
    of its watch cache): it is rebuilt from the API server's listing when the operator starts,
    so it is right after a restart, unlike a gauge moved up and down by the events one saw."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self._source: Callable[[], Counts] | None = None

    def watch(self, source: Callable[[], Counts] | None) -> None:
        """Read the counts from `source` from now on (None: no series, the operator stopped)."""
        self._source = source

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        source = self._source
        for values, count in sorted((source() if source else {}).items()):
            family.add_metric(values, count)
        yield family


TRAINING_RUNS = ObservedGauge(
    "cairn_operator_trainingruns",
    "TrainingRuns in the watched namespaces, by namespace and phase (not yet observed: Pending)",
    ("namespace", "phase"),
)
REGISTRY.register(TRAINING_RUNS)


def reconcile_finished(kind: Kind, result: Result, seconds: float) -> None:
    RECONCILES.labels(kind, result).inc()
    RECONCILE_DURATION.labels(kind).observe(seconds)


def training_finished(result: TrainingResult, seconds: float) -> None:
    TRAINING_DURATION.labels(result).observe(max(seconds, 0.0))


def version_registered(namespace: str) -> None:
    VERSIONS_REGISTERED.labels(namespace).inc()


def rollout_finished(outcome: Outcome, seconds: float | None) -> None:
    """A canary rollout ended: promoted to stable, rolled back by analysis or by its progress
    deadline, or aborted with `cairn abort`; `seconds` since status.canary.startedAt (None when
    unknown: counted, not timed)."""
    ROLLOUTS.labels(outcome).inc()
    if seconds is not None:
        ROLLOUT_DURATION.labels(outcome).observe(max(seconds, 0.0))


def analysis_judged(verdict: str) -> None:
    """One canary analysis interval judged (not the first reading, which is only a baseline);
    `verdict` is the judge's Pass, Fail or Inconclusive."""
    if verdict not in get_args(Verdict):
        raise ValueError(f"{verdict!r} is not a verdict: {', '.join(get_args(Verdict))}")
    ANALYSIS_VERDICTS.labels(verdict).inc()


def trigger_fired(trigger: TriggerType, outcome: TriggerOutcome) -> None:
    TRIGGERS.labels(trigger, outcome).inc()


def schedule_lag(seconds: float) -> None:
    SCHEDULE_LAG.observe(seconds)


@dataclasses.dataclass(frozen=True)
class DriftReading:
    """A monitored ModelDeployment's last judged window, as metrics show it."""

    model: str
    version: int
    feature_scores: tuple[tuple[str, float], ...]  # 1 at the feature's threshold
    drifted: bool | None  # None: not enough data
    drifted_share: float | None
    performance: tuple[str, float] | None  # (metric, value)


class DriftGauges(Collector):
    """Drift and live performance of monitored ModelDeployments. Unlike the other metrics these
    name models and features: one series per feature the status shows (at most 20) for each
    monitored ModelDeployment, removed with it."""

    def __init__(self) -> None:
        self._readings: dict[tuple[str, str], DriftReading] = {}
        self._lock = threading.Lock()

    def set(self, namespace: str, name: str, reading: DriftReading | None) -> None:
        with self._lock:
            if reading is None:
                self._readings.pop((namespace, name), None)
            else:
                self._readings[(namespace, name)] = reading

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            readings = sorted(self._readings.items())
        labels = ["namespace", "deployment", "model", "version"]
        features = GaugeMetricFamily(
            "cairn_feature_drift",
            "Drift score of a feature in the last window: the statistic over its threshold (for "
            "chi-squared, log p over log of the corrected significance level); >= 1: drifted",
            labels=[*labels, "feature"],
        )
        dataset = GaugeMetricFamily(
            "cairn_data_drift",
            "1 when the last window drifted (spec.monitoring.drift.driftShare of the features), "
            "0 when it did not; absent when it had too few rows",
            labels=labels,
        )
        share = GaugeMetricFamily(
            "cairn_drifted_features_share", "Share of features that drifted", labels=labels
        )
        live = GaugeMetricFamily(
            "cairn_live_performance",
            "Accuracy or mean absolute error from feedback in the last window",
            labels=[*labels, "metric"],
        )
        for (namespace, name), reading in readings:
            values = [namespace, name, reading.model, str(reading.version)]
            for feature, score in reading.feature_scores:
                features.add_metric([*values, feature], score)
            if reading.drifted is not None:
                dataset.add_metric(values, 1.0 if reading.drifted else 0.0)
            if reading.drifted_share is not None:
                share.add_metric(values, reading.drifted_share)
            if reading.performance is not None:
                live.add_metric([*values, reading.performance[0]], reading.performance[1])
        yield from (features, dataset, share, live)


DRIFT = DriftGauges()
REGISTRY.register(DRIFT)
