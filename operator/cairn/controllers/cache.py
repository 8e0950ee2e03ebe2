"""The watch caches (kube.cache) backed by kopf indexes: kopf fills every index from its watches
before any handler runs and keeps them current, with no API call of their own.

Every kopf index function in Cairn is async (they are quick and never block): kopf runs a sync
one in its handler thread pool, behind the reconciles, so under load each object's event waited
for a thread just to be indexed, the caches lagged, and every object with an event pending held
a worker and its event meanwhile (1.1 ms against 0.27 ms per ModelVersion event even on an idle
pool)."""

from typing import Any

import kopf

from cairn.api import (
    GROUP,
    VERSION,
    ContinuousTraining,
    Model,
    ModelDeployment,
    ModelVersion,
    Resource,
    TrainingRun,
)
from cairn.api.labels import CONTINUOUS_TRAINING_LABEL, RUN_LABEL
from cairn.kube import cache

Body = dict[str, Any]
Key = tuple[str | None, str | None]
Index = kopf.Index[Key, Body]


def cacheable(body: kopf.Body) -> Body:
    """The body without metadata.managedFields: nothing reads them from the cache, and they are
    often the larger part of an object (a record per writer), held for every object watched."""
    kept = dict(body)
    meta = kept.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        kept["metadata"] = {key: value for key, value in meta.items() if key != "managedFields"}
    return kept


JOB_CONTAINER_FIELDS = ("name", "image", "env")


def slim_job(body: kopf.Body) -> Body:
    """A run's Job as its reconcile reads it: metadata, status and spec, with the pod template
    cut to each container's name, image and environment (the champion it was given). The
    template is most of a Job, and a ContinuousTraining's queue keeps thousands of Jobs."""
    kept = cacheable(body)
    spec = dict(kept.get("spec") or {})
    pod = (spec.get("template") or {}).get("spec") or {}
    containers = [
        {key: container[key] for key in JOB_CONTAINER_FIELDS if key in container}
        for container in pod.get("containers") or []
    ]
    spec["template"] = {"spec": {"containers": containers}}
    kept["spec"] = spec
    return kept


def slim_pod(body: kopf.Body) -> Body:
    """A run's pod as its reconcile reads it (controllers.trainingrun.observe): its metadata and
    status. The spec, the larger part (the trainer contract's environment, volumes, the
    restricted security context), is never read, and the cache keeps a pod per run."""
    kept = cacheable(body)
    return {key: kept[key] for key in ("apiVersion", "kind", "metadata", "status") if key in kept}


def _by_name(namespace: str | None, name: str, body: kopf.Body) -> dict[Key, Body]:
    return {(namespace, name): cacheable(body)}


def _by_model(namespace: str | None, spec: kopf.Spec, body: kopf.Body) -> dict[Key, Body]:
    return {(namespace, spec.get("model")): cacheable(body)}


@kopf.index(GROUP, VERSION, Model.plural())
async def cached_models(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_name(namespace, name, body)


@kopf.index(GROUP, VERSION, ModelVersion.plural())
async def cached_versions(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_name(namespace, name, body)


@kopf.index(GROUP, VERSION, ModelVersion.plural())
async def cached_versions_by_model(
    namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_model(namespace, spec, body)


@kopf.index(GROUP, VERSION, ModelDeployment.plural())
async def cached_deployments(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_name(namespace, name, body)


@kopf.index(GROUP, VERSION, ModelDeployment.plural())
async def cached_deployments_by_model(
    namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_model(namespace, spec, body)


@kopf.index(GROUP, VERSION, TrainingRun.plural())
async def cached_runs(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_name(namespace, name, body)


@kopf.index(GROUP, VERSION, TrainingRun.plural(), labels={CONTINUOUS_TRAINING_LABEL: kopf.PRESENT})
async def cached_runs_by_continuous_training(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return {(namespace, labels.get(CONTINUOUS_TRAINING_LABEL)): cacheable(body)}


@kopf.index("batch", "v1", "jobs", labels={RUN_LABEL: kopf.PRESENT})
async def cached_run_jobs(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return {(namespace, labels.get(RUN_LABEL)): slim_job(body)}


@kopf.index("", "v1", "pods", labels={RUN_LABEL: kopf.PRESENT})
async def cached_run_pods(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return {(namespace, labels.get(RUN_LABEL)): slim_pod(body)}


@kopf.index(GROUP, VERSION, ContinuousTraining.plural())
async def cached_continuous_trainings(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Body]:
    return _by_name(namespace, name, body)


class IndexStore:
    """kube.cache.Store over kopf's indexes. kopf updates them in its event loop while handlers
    read them in worker threads: each read copies what it takes in one step (list() of a dict's
    values runs without releasing the GIL)."""

    def __init__(
        self, by_name: dict[Any, Index], by_model: dict[Any, Index], jobs: Index, pods: Index
    ) -> None:
        self._by_name = by_name
        self._by_model = by_model
        self._jobs = jobs
        self._pods = pods

    @staticmethod
    def _values(index: Index, key: Key) -> list[Body]:
        store = index.get(key)
        return list(store) if store else []

    def get(self, kind: type[Resource], namespace: str, name: str) -> Body | None:
        found = self._values(self._by_name[kind], (namespace, name))
        return found[0] if found else None

    def of_model(self, kind: type[Resource], namespace: str, model: str) -> list[Body]:
        return self._values(self._by_model[kind], (namespace, model))

    def runs_of(self, namespace: str, continuous_training: str) -> list[Body]:
        return self._values(self._by_model[ContinuousTraining], (namespace, continuous_training))

    def run_job(self, namespace: str, run: str) -> Body | None:
        found = self._values(self._jobs, (namespace, run))
        return found[0] if found else None

    def run_pods(self, namespace: str, run: str) -> list[Body]:
        return self._values(self._pods, (namespace, run))


@kopf.on.startup()
def install_caches(**kwargs: Any) -> None:
    # kopf passes each index to handlers under the name of its function.
    def index(handler: Any) -> Index:
        found: Index = kwargs[handler.__name__]
        return found

    cache.install(
        IndexStore(
            by_name={
                Model: index(cached_models),
                ModelVersion: index(cached_versions),
                ModelDeployment: index(cached_deployments),
                TrainingRun: index(cached_runs),
                ContinuousTraining: index(cached_continuous_trainings),
            },
            by_model={
                ModelVersion: index(cached_versions_by_model),
                ModelDeployment: index(cached_deployments_by_model),
                # The runs a ContinuousTraining started, by its name.
                ContinuousTraining: index(cached_runs_by_continuous_training),
            },
            jobs=index(cached_run_jobs),
            pods=index(cached_run_pods),
        )
    )


@kopf.on.cleanup()
def uninstall_caches(**_: Any) -> None:
    cache.install(None)
