"""Registering a succeeded TrainingRun as ModelVersion `<model>-v<N>`.

Safe to repeat and to interrupt between any two API calls: the version number is allocated on
the Model's status together with the run it belongs to (a retry gets the same number), and the
ModelVersion carries the run's uid (a retry after it exists finds it and allocates nothing), so
the allocation can be released as soon as the ModelVersion exists.
"""

import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from cairn.controllers import defaults
from cairn.kube import events, objects, ownership
from cairn.kube.errors import is_conflict
from cairn.observability import metrics
from cairn.registry import allocation

Body = dict[str, Any]
MODELS, VERSIONS = "models", "modelversions"
RUN_UID_LABEL = "cairn.dev/run-uid"
MODEL_LABEL = "cairn.dev/model"
RUN_LABEL = "cairn.dev/run"
CAS_ATTEMPTS = 50

logger = logging.getLogger(__name__)


def version_name(model: str, version: int) -> str:
    return f"{model}-v{version}"


def ensure_model(namespace: str, name: str, run: Body) -> Body:
    model = objects.get(MODELS, namespace, name)
    if model is not None:
        return model
    body = {
        "apiVersion": objects.API_VERSION,
        "kind": "Model",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"description": f"registered by TrainingRun {run['metadata']['name']}"},
    }
    try:
        model = objects.create(MODELS, namespace, body)
    except ApiException as error:
        if not is_conflict(error):  # created by a concurrent run of the same model: fine
            raise
        found = objects.get(MODELS, namespace, name)
        assert found is not None, f"Model {name} exists and yet cannot be read"
        return found
    events.info(run, reason="ModelCreated", message=f"created Model {name} for this run")
    return model


def update_model_status(namespace: str, name: str, change: Any) -> Body:
    """Apply `change(status) -> status` with optimistic concurrency, retrying on conflicts."""
    for _ in range(CAS_ATTEMPTS):
        model = objects.get(MODELS, namespace, name)
        if model is None:
            raise kopf.TemporaryError(f"Model {name} disappeared during registration", delay=5)
        new_status = change(dict(model.get("status") or {}))
        if new_status == model.get("status"):
            return model
        try:
            return objects.replace_status(MODELS, {**model, "status": new_status})
        except ApiException as error:
            if not is_conflict(error):
                raise
    raise kopf.TemporaryError(f"Model {name} kept changing; retrying registration", delay=1)


def existing_version(namespace: str, run: Body) -> Body | None:
    """The ModelVersion an earlier, interrupted registration of this run already created."""
    found = objects.list_(VERSIONS, namespace, f"{RUN_UID_LABEL}={run['metadata']['uid']}")
    return found[0] if found else None


def version_body(run: Body, model: Body, version: int) -> Body:
    spec, status = run["spec"], run.get("status") or {}
    summary_dataset = status.get("dataset") or {}
    name = version_name(spec["model"], version)
    source: Body = {
        "run": run["metadata"]["name"],
        "runUid": run["metadata"]["uid"],
        "image": spec.get("image") or defaults.trainer_image(),
        "params": spec.get("params") or {},
        "dataset": {
            "uri": (spec.get("dataset") or {}).get("uri") or summary_dataset.get("uri", ""),
            **({"digest": summary_dataset["digest"]} if summary_dataset.get("digest") else {}),
        },
    }
    revision = (spec.get("code") or {}).get("revision")
    if revision:
        source["codeRevision"] = revision
    body: Body = {
        "apiVersion": objects.API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": name,
            "namespace": run["metadata"]["namespace"],
            "labels": {
                MODEL_LABEL: spec["model"],
                RUN_LABEL: run["metadata"]["name"],
                RUN_UID_LABEL: run["metadata"]["uid"],
            },
        },
        "spec": {
            "model": spec["model"],
            "version": version,
            "artifact": status["artifact"],
            "source": source,
            "metrics": status.get("metrics") or {},
            "approval": {"state": "Pending"},
        },
    }
    if status.get("signature"):
        body["spec"]["signature"] = status["signature"]
    # Versions belong to their Model: deleting the Model deletes them; deleting the run does not.
    ownership.adopt(body, model)
    return body


def create_version(namespace: str, body: Body) -> Body:
    try:
        created = objects.create(VERSIONS, namespace, body)
    except ApiException as error:
        if not is_conflict(error):
            raise
    else:
        # Counted where the version comes into being: a retry that finds it counts nothing.
        metrics.version_registered(namespace)
        logger.info("created ModelVersion %s", body["metadata"]["name"])
        return created
    found = objects.get(VERSIONS, namespace, body["metadata"]["name"])
    ours = body["metadata"]["labels"][RUN_UID_LABEL]
    if found is None or found["metadata"].get("labels", {}).get(RUN_UID_LABEL) != ours:
        # Only possible if someone created it by hand: never overwrite a registered version.
        raise kopf.PermanentError(
            f"ModelVersion {body['metadata']['name']} already exists and belongs to another run"
        )
    return found


def register(run: Body) -> tuple[int, str]:
    """Register the run; returns (version, ModelVersion name). Idempotent."""
    namespace, run_name = run["metadata"]["namespace"], run["metadata"]["name"]
    model_name = run["spec"]["model"]
    model = ensure_model(namespace, model_name, run)

    done = existing_version(namespace, run)
    if done is not None:
        version = int(done["spec"]["version"])
    else:
        version = int((run.get("status") or {}).get("version") or 0)
        if not version:
            holder: list[int] = []

            def take(status: Body) -> Body:
                number, new_status = allocation.allocate(status, run_name)
                holder[:] = [number]
                return new_status

            update_model_status(namespace, model_name, take)
            version = holder[0]
        create_version(namespace, version_body(run, model, version))
    return version, version_name(model_name, version)


def release(run: Body, version: int) -> None:
    namespace, model_name = run["metadata"]["namespace"], run["spec"]["model"]
    update_model_status(
        namespace,
        model_name,
        lambda status: allocation.release(status, run["metadata"]["name"], version),
    )
