"""Prometheus metrics of one served model, in a registry of its own (exposed at /metrics).

Per-batch statistics (predictions by class, per-feature input summaries) are accumulated with
numpy once per model call and exposed by a collector, so they cost nothing per request.
"""

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from cairn.training.signature import PREDICT

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0)


class ServingMetrics:
    def __init__(
        self,
        model: str,
        version: str | None,
        features: Sequence[str],
        classes: Sequence[Any] | None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model, self.version = model, version or ""
        labels = {"model": self.model, "version": self.version}
        self._labels = labels
        self.requests = Counter(
            "cairn_serving_requests",
            "Requests by model, version, protocol and status code",
            ["model", "version", "protocol", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cairn_serving_request_duration_seconds",
            "Time from a request's arrival to its response, by protocol",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "cairn_serving_batch_requests",
            "Requests served by one model call (the adaptive batch size)",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.batch_rows = Histogram(
            "cairn_serving_batch_rows",
            "Rows predicted by one model call",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.model_seconds = Histogram(
            "cairn_serving_model_call_seconds",
            "Duration of one model call (a batch)",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.queue_depth = Gauge(
            "cairn_serving_queue_depth",
            "Requests waiting for the model",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels)
        self.inflight = Gauge(
            "cairn_serving_inflight_requests",
            "Requests being served",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels)
        self.ready = Gauge(
            "cairn_serving_ready",
            "1 when the model is loaded, verified and served",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels)
        self.info = Gauge(
            "cairn_serving_model_info",
            "The served model: its artifact digest and the runtime that executes it",
            ["model", "version", "digest", "runtime"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.data = DataCollector(labels, features, classes)
        self.registry.register(self.data)

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        key = (protocol, code)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(**self._labels, protocol=protocol, code=str(code)),
                self.latency.labels(**self._labels, protocol=protocol),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(
        self, requests: int, rows: NDArray[Any], results: dict[str, NDArray[Any]], took: float
    ) -> None:
        self.batch_requests.observe(requests)
        self.batch_rows.observe(len(rows))
        self.model_seconds.observe(took)
        self.data.observe(rows, results.get(PREDICT))


class DataCollector(Collector):
    """Predictions by class (or a histogram of predicted values) and per-feature input statistics:
    count, sum, sum of squares, min and max of each feature — enough for a drift monitor to
    compare means and variances between intervals."""

    def __init__(
        self, labels: dict[str, str], features: Sequence[str], classes: Sequence[Any] | None
    ) -> None:
        self._labels = labels
        self._features = list(features)
        self._classes = list(classes) if classes is not None else None
        self._lock = threading.Lock()
        n = len(self._features)
        self._count = 0
        self._sum = np.zeros(n)
        self._squares = np.zeros(n)
        self._min = np.full(n, np.inf)
        self._max = np.full(n, -np.inf)
        self._class_counts: dict[str, int] = {str(c): 0 for c in self._classes or []}
        self._value_buckets = np.zeros(len(VALUE_BUCKETS) + 1, dtype=np.int64)
        self._value_sum = 0.0

    def observe(self, rows: NDArray[Any], predictions: NDArray[Any] | None) -> None:
        numeric = rows.dtype.kind in "biuf" and rows.ndim == 2 and rows.shape[1] == len(self._sum)
        with self._lock:
            if numeric:
                values = rows.astype(np.float64, copy=False)
                self._count += len(values)
                self._sum += values.sum(axis=0)
                self._squares += np.square(values).sum(axis=0)
                np.minimum(self._min, values.min(axis=0), out=self._min)
                np.maximum(self._max, values.max(axis=0), out=self._max)
            if predictions is None:
                return
            if self._classes is not None:
                labels, counts = np.unique(predictions, return_counts=True)
                for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                    key = str(label)
                    self._class_counts[key] = self._class_counts.get(key, 0) + int(count)
            elif predictions.dtype.kind in "iuf":
                flat = predictions.astype(np.float64).reshape(-1)
                index = np.searchsorted(VALUE_BUCKETS, flat, side="left")
                self._value_buckets += np.bincount(index, minlength=len(VALUE_BUCKETS) + 1)
                self._value_sum += float(flat.sum())

    def collect(self) -> Iterator[Metric]:
        names, values = list(self._labels), list(self._labels.values())
        with self._lock:
            count = self._count
            stats = (self._sum.copy(), self._squares.copy(), self._min.copy(), self._max.copy())
            class_counts = dict(self._class_counts)
            buckets = self._value_buckets.copy()
            value_sum = self._value_sum
        summary = SummaryMetricFamily(
            "cairn_serving_input_feature",
            "Input values seen, by feature (count and sum; see also _squares, _min, _max)",
            labels=[*names, "feature"],
        )
        squares = GaugeMetricFamily(
            "cairn_serving_input_feature_squares",
            "Sum of the squares of the input values seen, by feature",
            labels=[*names, "feature"],
        )
        low = GaugeMetricFamily(
            "cairn_serving_input_feature_min",
            "Smallest input value seen, by feature (NaN before the first)",
            labels=[*names, "feature"],
        )
        high = GaugeMetricFamily(
            "cairn_serving_input_feature_max",
            "Largest input value seen, by feature (NaN before the first)",
            labels=[*names, "feature"],
        )
        for index, feature in enumerate(self._features):
            label_values = [*values, feature]
            summary.add_metric(label_values, count_value=count, sum_value=float(stats[0][index]))
            squares.add_metric(label_values, float(stats[1][index]))
            low.add_metric(label_values, float(stats[2][index]) if count else float("nan"))
            high.add_metric(label_values, float(stats[3][index]) if count else float("nan"))
        yield from (summary, squares, low, high)
        if self._classes is not None:
            predictions = CounterMetricFamily(
                "cairn_serving_predictions",
                "Predictions by class",
                labels=[*names, "class"],
            )
            for label, total in class_counts.items():
                predictions.add_metric([*values, label], total)
            yield predictions
        else:
            cumulative = np.cumsum(buckets)
            histogram = HistogramMetricFamily(
                "cairn_serving_prediction_value",
                "Predicted values (no _sum: the buckets include negative values)",
                labels=names,
            )
            bucket_pairs = [
                (repr(bound), float(total))
                for bound, total in zip(VALUE_BUCKETS, cumulative[:-1].tolist(), strict=True)
            ]
            bucket_pairs.append(("+Inf", float(cumulative[-1])))
            histogram.add_metric(values, bucket_pairs, sum_value=value_sum)
            yield histogram
