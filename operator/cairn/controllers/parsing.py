"""The controllers' boundary: a body from the API server becomes its API model here, or says on the
object why it cannot.

The API server validates with the CRD's schema; the models check a little more (parameter value
types, rules only Python can express) and an object written before a rule existed can break one.
Such an object gets the condition its kind uses to say "needs a person" (reason InvalidSpec,
the fields and what is wrong with them in the message) and a Warning Event; the reconcile stops
there, so nothing is retried in a loop. A status that no longer fits the model (written by an
older operator) is dropped and rebuilt: every status is derived from what the controller observes.
"""

import collections
import dataclasses
import logging
import threading
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from cairn.api import (
    Condition,
    ContinuousTraining,
    Model,
    ModelDeployment,
    ModelVersion,
    Resource,
    TrainingRun,
)
from cairn.api.conditions import set_condition
from cairn.kube import events, objects

Body = dict[str, Any]
R = TypeVar("R", bound=Resource)
INVALID_SPEC = "InvalidSpec"
ERRORS_SHOWN = 5

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InvalidReport:
    """How a kind says that its object cannot be acted on."""

    condition: str
    holds: bool  # the condition's status: True for Failed or Degraded, False for Ready
    phase: str | None = None
    has_message: bool = False  # the kind's status has a message field
    extra: dict[str, str] = dataclasses.field(default_factory=dict)


REPORTS: dict[type[Resource], InvalidReport] = {
    TrainingRun: InvalidReport(
        "Failed", True, "Failed", has_message=True, extra={"failureReason": INVALID_SPEC}
    ),
    Model: InvalidReport("Ready", False),
    ModelVersion: InvalidReport("Validated", False, "Invalid"),
    ModelDeployment: InvalidReport("Degraded", True, "Degraded", has_message=True),
    ContinuousTraining: InvalidReport("Ready", False),
}


def describe(error: ValidationError) -> str:
    """The refused fields and why, as a person reads them: `spec.params.depth: ...`."""
    problems = []
    for item in error.errors()[:ERRORS_SHOWN]:
        where = ".".join(str(part) for part in item["loc"])
        problems.append(f"{where}: {item['msg']}")
    more = error.error_count() - ERRORS_SHOWN
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _in_status(error: ValidationError) -> bool:
    return all(item["loc"][:1] == ("status",) for item in error.errors())


def parse(kind: type[R], body: Body) -> R | None:
    """`body` as a `kind`; None when its spec breaks the model (reported on the object)."""
    try:
        return kind.model_validate(body)
    except ValidationError as error:
        if not _in_status(error):
            report_invalid(kind, body, describe(error))
            return None
        logger.warning(
            "%s %s: status does not fit the API (%s); rebuilding it",
            kind.kind_name(),
            body["metadata"]["name"],
            describe(error),
        )
    meta = body["metadata"]
    objects.patch_status(kind, meta["namespace"], meta["name"], None)
    return kind.model_validate({**body, "status": None})


# Objects from the watch caches, parsed once per resourceVersion: a Model's versions are read by
# every reconcile of the Model, and a burst of registrations reconciles it again and again. One
# entry per object (its latest version replaces the one before), so status writes that churn
# versions do not fill the memo with parses nobody reads again; deleted objects leave it least
# recently used first. It must hold every object watched (~4 KiB a parsed ModelVersion): at
# 2,000 for 10,000 versions, bench-scale's churn p99 went from 3 s to 46 s.
PARSED_MAX = 20000
_parsed: collections.OrderedDict[tuple[str, str], tuple[str, Resource | None]] = (
    collections.OrderedDict()
)
_parsed_lock = threading.Lock()


# pydantic gives every model instance its own set of the fields that were set, and a set is
# large (216 bytes, 728 past five names): ~6 of the 10 KiB of a parsed ModelVersion. The memo's
# parses share one set per distinct combination of names (a few dozen, fixed by the API). A set
# is only read by exclude_unset and model_fields_set, which Cairn never uses, and copied by
# model_copy before an update; parses from the memo are never modified in place.
_field_sets: dict[frozenset[str], set[str]] = {}


def _share_field_sets(model: BaseModel) -> None:
    names = model.__pydantic_fields_set__
    object.__setattr__(
        model, "__pydantic_fields_set__", _field_sets.setdefault(frozenset(names), names)
    )
    for value in model.__dict__.values():
        if isinstance(value, BaseModel):
            _share_field_sets(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    _share_field_sets(item)


def cached(kind: type[R], body: Body | None) -> R | None:
    """`body` (from a watch cache) as a `kind`; None when there is none, or when it breaks the
    model (its own controller reports that). Never modify what this returns: it is shared."""
    if body is None:
        return None
    meta = body.get("metadata") or {}
    version = meta.get("resourceVersion")
    key = (kind.__name__, str(meta.get("uid")))
    if version is not None:
        with _parsed_lock:
            memo = _parsed.get(key)
            if memo is not None and memo[0] == version:
                _parsed.move_to_end(key)
                return memo[1]  # type: ignore[return-value]
    try:
        parsed: R | None = kind.model_validate(body)
    except ValidationError:
        parsed = None
    if version is not None:
        if parsed is not None:
            _share_field_sets(parsed)
        with _parsed_lock:
            _parsed[key] = (version, parsed)
            _parsed.move_to_end(key)
            while len(_parsed) > PARSED_MAX:
                _parsed.popitem(last=False)
    return parsed


def _conditions(body: Body) -> list[Condition]:
    try:
        return TypeAdapter(list[Condition]).validate_python(
            (body.get("status") or {}).get("conditions") or []
        )
    except ValidationError:
        return []


def report_invalid(kind: type[Resource], body: Body, problems: str) -> None:
    report = REPORTS[kind]
    meta = body["metadata"]
    message = (
        f"the object breaks the {kind.kind_name()} API: {problems}; fix these fields "
        "(`kubectl explain` describes them)"
    )
    old = _conditions(body)
    conditions = set_condition(
        old, report.condition, report.holds, INVALID_SPEC, message, meta.get("generation")
    )
    status: Body = {
        "observedGeneration": meta.get("generation"),
        "conditions": [c.to_dict() for c in conditions],
        **report.extra,
    }
    if report.phase:
        status["phase"] = report.phase
    if report.has_message:
        status["message"] = message
    if conditions == old and (body.get("status") or {}).get("phase") == report.phase:
        return  # already said
    objects.patch_status(kind, meta["namespace"], meta["name"], status)
    logger.warning("%s %s: %s", kind.kind_name(), meta["name"], message)
    events.warn(body, reason=INVALID_SPEC, message=message)
