"""The object and reconcile id every log line of a reconcile carries.

A reconcile sets the context (a contextvar, so kopf's worker threads and asyncio.to_thread keep
it apart per reconcile); a filter on the log handlers adds it to each record logged inside it:
`k8s_ref`, the attribute kopf's own per-object log lines carry (kopf's JSON formatter writes it
as "object", its text formats prefix the line with [namespace/name]), and `reconcile_id`, which
the JSON formatter writes as a field of its own. One reconcile's lines are found by that id.
The filter also names the logger in `logger`, which kopf's JSON lines otherwise leave out.
"""

import contextvars
import dataclasses
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from cairn.api.base import API_VERSION


@dataclasses.dataclass(frozen=True)
class ReconcileContext:
    kind: str
    namespace: str
    name: str
    id: str

    def ref(self) -> dict[str, str]:
        """The object as kopf's log records refer to it (`k8s_ref`)."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


_current: contextvars.ContextVar[ReconcileContext | None] = contextvars.ContextVar(
    "cairn_reconcile", default=None
)


def new_id() -> str:
    """A short random id: unique enough to tell apart the reconciles of one object."""
    return secrets.token_hex(4)


def current() -> ReconcileContext | None:
    return _current.get()


@contextmanager
def reconcile_context(kind: str, namespace: str, name: str) -> Iterator[ReconcileContext]:
    """Log lines inside the block carry this object and a new reconcile id."""
    context = ReconcileContext(kind, namespace, name, new_id())
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class ContextFilter(logging.Filter):
    """Adds the logger name, and the current reconcile's object and id, to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "logger"):
            setattr(record, "logger", record.name)  # noqa: B010  (not a LogRecord field)
        context = _current.get()
        if context is not None:
            if not hasattr(record, "k8s_ref"):
                setattr(record, "k8s_ref", context.ref())  # noqa: B010
            if not hasattr(record, "reconcile_id"):
                setattr(record, "reconcile_id", context.id)  # noqa: B010
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (the root logger, where kopf.configure and
    `kopf run` put theirs). A handler filter, unlike a logger's, sees the records of every
    logger that propagates to it. Idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())


class HandlerSuccesses(logging.Filter):
    """Drops kopf's "Handler 'on_run' succeeded." lines. Cairn's watch event handlers run for
    every event of every object (a few per training run, thousands a minute in a busy cluster)
    and only queue a reconcile, which logs what it does; the line said nothing a user could
    act on, and writing it cost kopf's event loop a tenth of its time in a burst. Errors and
    retries are still logged; at debug level nothing is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and isinstance(record.msg, str)
            and record.msg.startswith("Handler '")
            and record.msg.endswith("' succeeded.")
        )


def quiet_handler_successes() -> None:
    """Install HandlerSuccesses on kopf's per-object logger. Idempotent."""
    logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, HandlerSuccesses) for f in logger.filters):
        logger.addFilter(HandlerSuccesses())
