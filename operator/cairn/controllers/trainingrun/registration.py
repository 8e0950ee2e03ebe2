"""Registering a succeeded run as ModelVersion `<model>-v<N>` (the numbering is the registry's).

Safe to repeat and to interrupt between any two API calls: the only write is the creation of the
ModelVersion, whose name is the lock on its number and whose run-uid label lets a retry find it.
The run's status records the result afterwards; the Model's status is the Model controller's.
"""

import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.api import Model, ModelSpec, ModelVersion, TrainingRun
from cairn.api.labels import MODEL_LABEL
from cairn.api.trainingrun import RegistrationReason
from cairn.kube import events, objects, ownership
from cairn.kube.errors import is_conflict, is_invalid, reason_of
from cairn.observability import metrics
from cairn.registry.registration import (
    RegistrationError,
    first_number,
    made_by,
    version_for,
    version_name,
)

Body = dict[str, Any]
# A run that finds this many numbers in a row taken by versions not its own stops and says so.
NUMBERS_TRIED = 100

logger = logging.getLogger(__name__)


def _api_failure(what: str, error: ApiException) -> RegistrationError:
    """An API error as a registration outcome: refusals are final, the rest is retried."""
    if is_invalid(error):
        return RegistrationError(
            RegistrationReason.VERSION_REFUSED,
            f"the API server refused {what}: {reason_of(error)}; the run's results cannot be "
            "recorded as they are (its metrics and artifact stay in the run's status)",
            retry=False,
        )
    return RegistrationError(
        RegistrationReason.RETRYING,
        f"could not write {what} ({error.status}: {reason_of(error)}); retrying",
        retry=True,
    )


def ensure_model(run: TrainingRun) -> Body:
    """The run's Model as the API server has it, created when missing."""
    namespace, name = run.namespace, run.spec.model
    try:
        found = objects.get(Model, namespace, name)
        if found is None:
            body = Model(
                metadata={"name": name, "namespace": namespace},
                spec=ModelSpec(description=f"registered by TrainingRun {run.name}"),
            ).to_dict()
            try:
                found = objects.create(Model, namespace, body)
                events.info(run, reason="ModelCreated", message=f"created Model {name}")
            except ApiException as error:
                if not is_conflict(error):
                    raise
                found = objects.get(Model, namespace, name)  # made by a concurrent run: fine
    except ApiException as error:
        raise _api_failure(f"Model {name}", error) from error
    if found is None:
        raise RegistrationError(
            RegistrationReason.RETRYING, f"Model {name} disappeared; retrying", retry=True
        )
    if found["metadata"].get("deletionTimestamp"):
        raise RegistrationError(
            RegistrationReason.MODEL_UNAVAILABLE,
            f"Model {name} is being deleted: the run is registered once it is gone (as version "
            "1 of a new Model), or delete the run",
            retry=True,
        )
    return found


def _latest_recorded(model: Body) -> int:
    return int((model.get("status") or {}).get("latestVersion") or 0)


def register(run: TrainingRun) -> int:
    """Register the succeeded run; returns its version number. Idempotent. Raises
    RegistrationError when it cannot (retry says whether a later attempt can help)."""
    namespace, model_name = run.namespace, run.spec.model
    model = ensure_model(run)
    try:
        # From the API server, not a cache: it must see a version this run made a moment ago.
        listed = objects.list_(ModelVersion, namespace, {MODEL_LABEL: model_name})
    except ApiException as error:
        raise _api_failure(f"the versions of Model {model_name}", error) from error
    for body in listed:
        if made_by(body, run):
            return int(body["spec"]["version"])
    in_use = [int(v["spec"]["version"]) for v in listed if v["spec"].get("model") == model_name]
    start = first_number(in_use, _latest_recorded(model))
    for number in range(start, start + NUMBERS_TRIED):
        name = version_name(model_name, number)
        body = version_for(run, number).to_dict()
        ownership.adopt(body, model)  # deleting the Model deletes its versions; not the run
        try:
            objects.create(ModelVersion, namespace, body)
        except ApiException as error:
            if not is_conflict(error):
                raise _api_failure(f"ModelVersion {name}", error) from error
            try:
                taken = objects.get(ModelVersion, namespace, name)
            except ApiException as read_error:
                raise _api_failure(f"ModelVersion {name}", read_error) from read_error
            if taken is not None and made_by(taken, run):
                return number
            logger.info("%s belongs to another run; trying the next number", name)
            continue
        # Counted where the version comes into being: a retry that finds it counts nothing.
        metrics.version_registered(namespace)
        logger.info("created ModelVersion %s", name)
        return number
    raise RegistrationError(
        RegistrationReason.RETRYING,
        f"versions {start} to {start + NUMBERS_TRIED - 1} of Model {model_name} are all taken "
        "by ModelVersions of other runs; delete those made by hand, then registration goes on",
        retry=True,
    )
