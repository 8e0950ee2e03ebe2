"""Operator-wide kopf settings, the log context and the metrics server, applied at startup.

A startup handler (rather than arguments to kopf.run) makes `kopf run -m cairn.controllers`,
the test fixtures and `cairn-operator` behave the same.
"""

import logging
import os
import socket
from collections.abc import Mapping

import kopf

from cairn.controllers import defaults
from cairn.observability import logs, server

ANNOTATION_PREFIX = "cairn.dev"
REPORTING_COMPONENT = "cairn-operator"


def configure(settings: kopf.OperatorSettings, *, instance: str, scanning: bool = True) -> None:
    """Set what Cairn changes from kopf's defaults; `instance` names this replica in Events.

    `scanning` False stops kopf from listing and watching namespaces and CRDs, cluster-scoped
    reads that the Helm chart's namespaced mode does not grant: the operator then serves exactly
    the namespaces it was given (no globs) and the CRDs present when it started.
    """
    settings.scanning.disabled = not scanning
    # Cairn posts an Event for every user-visible transition itself; routine handler log lines
    # would only bury those, so only warnings and errors from handlers also become Events.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = REPORTING_COMPONENT
    settings.posting.reporting_instance = instance
    settings.posting.event_name_prefix = "cairn-event-"

    # kopf's bookkeeping (handler progress, last handled spec) lives in cairn.dev annotations:
    # status belongs to Cairn's API and its schema has no room for it.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"

    # Every watch handler is async and queues its reconcile in controllers.workqueue's threads:
    # kopf's own thread pool runs only the startup and cleanup handlers.
    settings.execution.max_workers = 2

    # Without a server-side timeout a watch whose connection silently died is never noticed.
    # The client waits a little longer so that the server, not the client, ends a quiet watch.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10


def instance_name(environ: Mapping[str, str]) -> str:
    """This replica's name: POD_NAME (the downward API sets it in the chart), else the host's."""
    return environ.get("POD_NAME") or socket.gethostname()


def scanning(environ: Mapping[str, str]) -> bool:
    """CAIRN_SCANNING=false (the chart sets it in namespaced mode) turns kopf's scanning off."""
    return environ.get("CAIRN_SCANNING", "true").strip().lower() != "false"


@kopf.on.startup()
def apply_settings(settings: kopf.OperatorSettings, **_: object) -> None:
    configure(settings, instance=instance_name(os.environ), scanning=scanning(os.environ))


@kopf.on.startup()
def check_installation_defaults(**_: object) -> None:
    """A bad CAIRN_ANALYSIS_* stops the operator at startup, naming the variable, rather than
    failing every canary's reconcile later."""
    try:
        defaults.analysis()
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from error


@kopf.on.startup()
def add_reconcile_context_to_logs(**_: object) -> None:
    """Every log line of a reconcile carries its object and reconcile id (observability.logs)."""
    logs.install()


def metrics_address(memo: kopf.Memo, environ: Mapping[str, str]) -> str:
    """cairn-operator's --metrics-addr (passed in the memo), else $CAIRN_METRICS_ADDR, else the
    default: under `kopf run`, and in the tests, the environment variable sets it."""
    address = memo.get("metrics_addr")
    if isinstance(address, str):
        return address
    return environ.get(server.ENV, server.DEFAULT_ADDRESS)


@kopf.on.startup()
def serve_metrics(memo: kopf.Memo, logger: kopf.Logger, **_: object) -> None:
    address = metrics_address(memo, os.environ)
    try:
        memo["metrics_server"] = served = server.start(address)
    except (OSError, ValueError) as error:
        # Failing loudly beats running unobserved behind a port that answers nothing.
        raise kopf.PermanentError(f"cannot serve metrics at {address}: {error}") from error
    if served is not None:
        logger.info("serving metrics at %s", served.url)


@kopf.on.cleanup()
def stop_metrics(memo: kopf.Memo, **_: object) -> None:
    served = memo.get("metrics_server")
    if isinstance(served, server.MetricsServer):
        served.stop()
