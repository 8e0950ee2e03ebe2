"""An analysis interval's readings: every serving pod's /metrics through the API server (the
built-in provider), or the metrics' PromQL sent to Prometheus (the prometheus provider)."""

import datetime
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from cairn.analysis import judge, promql
from cairn.analysis import metrics as serving_metrics
from cairn.api import ModelDeployment
from cairn.api.labels import TRACK_LABEL
from cairn.api.modeldeployment import Analysis, AnalysisProvider, CanaryStatus
from cairn.controllers.deployment import manifests
from cairn.kube import workloads
from cairn.observability import metrics

Body = dict[str, Any]
QUERY_TIMEOUT_S = 5.0


def ready_pods(mdep: ModelDeployment) -> list[tuple[str, str]]:
    """The ModelDeployment's serving pods that are ready and not leaving: (pod, track)."""
    return [(pod, track) for pod, track, ready in serving_pods(mdep) if ready]


def serving_pods(mdep: ModelDeployment) -> list[tuple[str, str, bool]]:
    """The ModelDeployment's serving pods that are not leaving: (pod, track, ready)."""
    found = []
    for pod in workloads.list_pods(mdep.namespace, manifests.pod_labels(mdep.name)):
        pod_meta, status = pod["metadata"], pod.get("status") or {}
        track = (pod_meta.get("labels") or {}).get(TRACK_LABEL)
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if not pod_meta.get("deletionTimestamp") and track is not None:
            found.append((pod_meta["name"], track, ready))
    return found


def read_pods(mdep: ModelDeployment) -> dict[str, tuple[str, serving_metrics.Counters]]:
    """Every ready serving pod's counters (pod → (track, counters)), read from its /metrics
    through the API server; a pod that does not answer is left out of this interval."""
    readings = {}
    for pod, track in ready_pods(mdep):
        text = workloads.read_pod_path(mdep.namespace, pod, mdep.spec.port, "metrics")
        if text is not None:
            try:
                readings[pod] = (track, serving_metrics.parse(text))
            except ValueError:
                continue
    return readings


def query(address: str, promql_text: str) -> float | None:
    """One instant query against Prometheus' HTTP API."""
    if urllib.parse.urlsplit(address).scheme not in ("http", "https"):
        # The API refuses anything else; never let urllib open a file:// or ftp:// "address".
        raise promql.QueryError(f"prometheus.address {address!r} is not an http(s) URL")
    url = f"{address.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql_text})
    try:
        with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT_S) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:  # Prometheus explains a bad query in the body
        try:
            answer = json.load(error)
        except ValueError:
            raise promql.QueryError(f"HTTP {error.code} from {address}") from None
    except (OSError, ValueError) as error:
        raise promql.QueryError(f"Prometheus at {address} did not answer: {error}") from None
    return promql.value_of(answer)


def ask_prometheus(mdep: ModelDeployment, analysis: Analysis) -> judge.Measured:
    """The interval measured by Prometheus; a failed query leaves its metric unmeasured, with
    the reason in its result."""
    address = analysis.prometheus.address if analysis.prometheus else ""
    answers: dict[tuple[str, str], float | None] = {}
    problems: dict[str, str] = {}
    for key, text in promql.queries(analysis, mdep.namespace, mdep.name).items():
        try:
            answers[key] = query(address, text)
        except promql.QueryError as error:
            problems.setdefault(key[0], str(error))
    if promql.REQUESTS in problems:  # without the request count no metric can be judged
        problems = {m.name: problems[promql.REQUESTS] for m in judge.metrics_of(analysis)}
    return promql.measured(analysis, answers, problems)


def analyse(
    mdep: ModelDeployment, canary: CanaryStatus, analysis: Analysis, now: datetime.datetime
) -> CanaryStatus:
    """status.canary with this interval read and judged by the configured provider."""
    if analysis.provider == AnalysisProvider.PROMETHEUS:
        measured = ask_prometheus(mdep, analysis)
        updated = judge.record_verdict(
            canary.model_copy(update={"last_analysis_at": now}), analysis, measured
        )
    else:
        updated = judge.record(canary, analysis, read_pods(mdep), now)
        if canary.last_analysis_at is None:
            return updated  # the first reading is only a baseline
    if updated.verdict is not None:
        metrics.analysis_judged(updated.verdict.value)
    return updated
