"""The champion a run is given to beat: the version holding its Model's promotion alias when the
run starts, read from the watch caches. The training code scores it beside its own model on the
same evaluation data (cairn.training.evaluate), which is what automatic promotion compares."""

from cairn.api import Model, ModelVersion, TrainingRun
from cairn.api.trainingrun import ChampionRef
from cairn.controllers.parsing import cached
from cairn.kube import cache
from cairn.registry.registration import version_name


def champion_for(run: TrainingRun) -> ChampionRef | None:
    model = cached(Model, cache.get(Model, run.namespace, run.spec.model))
    promotion = model.spec.policy.promotion if model is not None else None
    if model is None or promotion is None:
        return None
    holder = ((model.status and model.status.aliases) or {}).get(promotion.alias)
    if holder is None:
        return None
    found = cache.get(ModelVersion, run.namespace, version_name(model.name, holder))
    if found is None:
        return None
    artifact = found["spec"]["artifact"]
    if not str(artifact["uri"]).startswith(("pvc://", "file://", "s3://")):
        return None
    return ChampionRef(version=holder, uri=artifact["uri"], digest=artifact["digest"])
