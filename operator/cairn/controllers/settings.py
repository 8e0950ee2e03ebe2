"""Operator-wide kopf settings, applied at startup.

A startup handler (rather than arguments to kopf.run) makes `kopf run -m cairn.controllers`,
the test fixtures and `cairn-operator` behave the same.
"""

import logging
import os
import socket
from collections.abc import Mapping

import kopf

ANNOTATION_PREFIX = "cairn.dev"
REPORTING_COMPONENT = "cairn-operator"


def configure(settings: kopf.OperatorSettings, *, instance: str) -> None:
    """Set what Cairn changes from kopf's defaults; `instance` names this replica in Events."""
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

    # Handlers are synchronous and spend their time waiting on the API server: with asyncio's
    # default of a handful of threads, 200 runs created at once would queue behind each other.
    settings.execution.max_workers = 32

    # Without a server-side timeout a watch whose connection silently died is never noticed.
    # The client waits a little longer so that the server, not the client, ends a quiet watch.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10


def instance_name(environ: Mapping[str, str]) -> str:
    """This replica's name: POD_NAME (the downward API sets it in the chart), else the host's."""
    return environ.get("POD_NAME") or socket.gethostname()


@kopf.on.startup()
def apply_settings(settings: kopf.OperatorSettings, **_: object) -> None:
    configure(settings, instance=instance_name(os.environ))
