"""One reconcile, observed: its log lines carry the object and a reconcile id, its duration and
result are counted (cairn_operator_reconciles_total, cairn_operator_reconcile_duration_seconds)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from cairn.observability import logs, metrics


@contextmanager
def reconciling(kind: metrics.Kind, namespace: str, name: str) -> Iterator[str]:
    """Wrap one reconcile of an object; yields its reconcile id. An exception counts as an
    error and goes on to the caller (kopf retries the handler)."""
    with logs.reconcile_context(kind, namespace, name) as context:
        started = time.perf_counter()
        result: metrics.Result = "error"
        try:
            yield context.id
            result = "success"
        finally:
            metrics.reconcile_finished(kind, result, time.perf_counter() - started)
