"""One reconcile, observed: its log lines carry the object and a reconcile id, its duration and
result are counted (cairn_operator_reconciles_total, cairn_operator_reconcile_duration_seconds)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from cairn.observability import logs, metrics


class Interrupted(Exception):
    """A reconcile cut short because the operator is stopping (kube.cache.NotInstalled)."""


@contextmanager
def reconciling(kind: metrics.Kind, namespace: str, name: str) -> Iterator[str]:
    """Wrap one reconcile of an object; yields its reconcile id. An exception counts as an
    error and goes on to the caller (kopf retries the handler). A reconcile cut short because
    the operator is stopping (its caches already gone) is not counted: it failed nothing, and
    every stop of the operator (a rolling update) would otherwise show as errors."""
    with logs.reconcile_context(kind, namespace, name) as context:
        started = time.perf_counter()
        result: metrics.Result | None = "error"
        try:
            yield context.id
            result = "success"
        except Interrupted:
            result = None
            raise
        finally:
            if result is not None:
                metrics.reconcile_finished(kind, result, time.perf_counter() - started)
