"""Prometheus metrics of one served model, in a registry of its own (exposed at /metrics).

What is counted per request or per model call is counted on the event loop's thread, where the
whole request path runs (REST, gRPC, the batcher's bookkeeping; the model itself runs on
another thread but counts nothing): plain integers and lists, no lock, turned into metric
families only when /metrics is read. prometheus_client's own Counter and Histogram take a lock
per observation, which at ten thousand requests a second is a measurable share of the time.
Per-batch statistics of the data (predictions by class, per-feature input summaries) are
buffered and folded in with numpy a few hundred rows at a time.
"""

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from cairn.training.signature import PREDICT, PREDICT_PROBA

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0)
# Rows of input data buffered before they are folded into the per-feature statistics.
FOLD_ROWS = 512
# Also given each folded batch: rows, and predicted labels or values (None when unknown).
Sink = Callable[[NDArray[Any], NDArray[Any] | None], None]


class _Histogram:
    """Observations from the event loop's thread only (no lock)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bucket with le >= value
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        pairs, total = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            total += count
            pairs.append((_float_label(bound), float(total)))
        pairs.append(("+Inf", float(total + self.counts[-1])))
        return pairs


def _float_label(bound: float) -> str:
    return repr(float(bound))


class ServingMetrics:
    def __init__(
        self,
        model: str,
        version: str | None,
        features: Sequence[str],
        classes: Sequence[Any] | None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model, self.version = model, version or ""
        labels = {"model": self.model, "version": self.version}
        self._labels = labels
        # Requests being served: the request path adds and subtracts, /metrics reads.
        self.inflight = 0
        self._requests: dict[tuple[str, int], list[int]] = {}  # (protocol, code) -> [count]
        self._latency: dict[str, _Histogram] = {}  # by protocol
        self.batch_requests = _Histogram(BATCH_BUCKETS)
        self.batch_rows = _Histogram(BATCH_BUCKETS)
        self.model_seconds = _Histogram(LATENCY_BUCKETS)
        self.registry.register(_RequestCollector(self))
        self.queue_depth = Gauge(
            "cairn_serving_queue_depth",
            "Requests waiting for the model",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels)
        Gauge(
            "cairn_serving_inflight_requests",
            "Requests being served",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels).set_function(lambda: self.inflight)
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
        self._classes = tuple(classes) if classes is not None else None
        self.data = DataCollector(labels, features, classes, sinks)
        self.registry.register(self.data)
        # The model's files, at start, from an object store: found in the node's cache, or
        # downloaded (and how much). Absent for a model read from a directory.
        self._artifact_fetches = Counter(
            "cairn_serving_artifact_fetches",
            "Fetches of the model's files from the object store at start, by where they were "
            "found: cache (the node's model cache, nothing downloaded) or store",
            ["model", "version", "source"],
            registry=self.registry,
        )
        self._downloaded = Counter(
            "cairn_serving_artifact_downloaded_bytes",
            "Bytes of the model's files downloaded from the object store",
            ["model", "version"],
            registry=self.registry,
        )
        self._fetch_seconds = Gauge(
            "cairn_serving_artifact_fetch_seconds",
            "Seconds taken to get the model's files (download and digest, or the cache lookup)",
            ["model", "version"],
            registry=self.registry,
        )

    def requests_seen(self) -> int:
        """Inference requests answered or under way (REST and gRPC; probes are not counted)."""
        return self.inflight + sum(count[0] for count in self._requests.values())

    def observe_fetch(self, cache_hit: bool, downloaded: int, seconds: float) -> None:
        source = "cache" if cache_hit else "store"
        self._artifact_fetches.labels(**self._labels, source=source).inc()
        self._downloaded.labels(**self._labels).inc(downloaded)
        self._fetch_seconds.labels(**self._labels).set(seconds)

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        key = (protocol, code)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = [0]
        counter[0] += 1
        latency = self._latency.get(protocol)
        if latency is None:
            latency = self._latency[protocol] = _Histogram(LATENCY_BUCKETS)
        latency.observe(seconds)

    def observe_batch(
        self, requests: int, rows: NDArray[Any], results: dict[str, NDArray[Any]], took: float
    ) -> None:
        self.batch_requests.observe(requests)
        self.batch_rows.observe(len(rows))
        self.model_seconds.observe(took)
        self.data.observe(rows, predicted(results, self._classes))


def predicted(
    results: dict[str, NDArray[Any]], classes: Sequence[Any] | None
) -> NDArray[Any] | None:
    """The predicted labels or values of a model call: its predict output, else (when only
    probabilities were asked for) the most probable class."""
    found = results.get(PREDICT)
    if found is not None:
        return found
    proba = results.get(PREDICT_PROBA)
    if proba is None or classes is None or proba.ndim != 2 or proba.shape[1] != len(classes):
        return None
    labels: NDArray[Any] = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    return labels


class _RequestCollector(Collector):
    """The request and model-call counters of ServingMetrics, as metric families."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        names = list(metrics._labels)
        values = list(metrics._labels.values())
        requests = CounterMetricFamily(
            "cairn_serving_requests",
            "Requests by model, version, protocol and status code",
            labels=[*names, "protocol", "code"],
        )
        for (protocol, code), counter in sorted(metrics._requests.items()):
            requests.add_metric([*values, protocol, str(code)], counter[0])
        yield requests
        latency = HistogramMetricFamily(
            "cairn_serving_request_duration_seconds",
            "Time from a request's arrival to its response, by protocol",
            labels=[*names, "protocol"],
        )
        for protocol, histogram in sorted(metrics._latency.items()):
            latency.add_metric([*values, protocol], histogram.cumulative(), histogram.sum)
        yield latency
        for name, text, histogram in (
            (
                "cairn_serving_batch_requests",
                "Requests served by one model call (the adaptive batch size)",
                metrics.batch_requests,
            ),
            ("cairn_serving_batch_rows", "Rows predicted by one model call", metrics.batch_rows),
            (
                "cairn_serving_model_call_seconds",
                "Duration of one model call (a batch)",
                metrics.model_seconds,
            ),
        ):
            family = HistogramMetricFamily(name, text, labels=names)
            family.add_metric(values, histogram.cumulative(), histogram.sum)
            yield family


class DataCollector(Collector):
    """Predictions by class (or a histogram of predicted values) and per-feature input statistics:
    count, sum, sum of squares, min and max of each feature — enough for a drift monitor to
    compare means and variances between intervals."""

    def __init__(
        self,
        labels: dict[str, str],
        features: Sequence[str],
        classes: Sequence[Any] | None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self._labels = labels
        self._sinks = tuple(sinks)
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
        self._pending: list[tuple[NDArray[Any], NDArray[Any] | None]] = []
        self._pending_rows = 0

    def observe(self, rows: NDArray[Any], predictions: NDArray[Any] | None) -> None:
        """Buffered: folded into the statistics every FOLD_ROWS rows, and when collected."""
        with self._lock:
            self._pending.append((rows, predictions))
            self._pending_rows += len(rows)
            if self._pending_rows < FOLD_ROWS:
                return
            pending = self._take_pending()
        self._fold(pending)

    def flush(self) -> None:
        """Fold what is buffered now (before the sinks are read)."""
        with self._lock:
            pending = self._take_pending()
        self._fold(pending)

    def _take_pending(self) -> list[tuple[NDArray[Any], NDArray[Any] | None]]:
        pending, self._pending, self._pending_rows = self._pending, [], 0
        return pending

    def _fold(self, pending: list[tuple[NDArray[Any], NDArray[Any] | None]]) -> None:
        if not pending:
            return
        rows = np.concatenate([batch for batch, _ in pending])
        known = [p for _, p in pending if p is not None]
        predictions = np.concatenate([p.reshape(len(p), -1) for p in known]) if known else None
        if predictions is not None and predictions.shape[1] == 1:
            predictions = predictions.reshape(-1)
        for sink in self._sinks:
            sink(rows, predictions)
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
            pending = self._take_pending()
        self._fold(pending)
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
