"""The label and annotation keys Cairn writes and reads, defined once.

Labels select: a model's versions, a run's Job and pods, a ModelDeployment's Deployments and pods.
Annotations carry what a selector never needs: artifact locations, manifest hashes, and the
manual rollout controls people set (`cairn promote|abort|resume`).
"""

from collections.abc import Mapping
from typing import Final

PREFIX: Final = "cairn.dev"

# On ModelVersions (and on a run's Job and pods, a ModelDeployment's Deployments and Services).
MODEL_LABEL: Final = "cairn.dev/model"
# On a run's Job and pods, and on the ModelVersion registered from the run.
RUN_LABEL: Final = "cairn.dev/run"
# On the ModelVersion registered from a run: a retried registration finds it by this label.
RUN_UID_LABEL: Final = "cairn.dev/run-uid"
# On a ModelDeployment's Deployments, Services and pods.
DEPLOYMENT_LABEL: Final = "cairn.dev/deployment"
TRACK_LABEL: Final = "cairn.dev/track"
VERSION_LABEL: Final = "cairn.dev/version"

# On a serving Deployment and its pods: what they serve.
ARTIFACT_ANNOTATION: Final = "cairn.dev/artifact"
DIGEST_ANNOTATION: Final = "cairn.dev/digest"
# On a run's Job: the artifact URI of the champion it was given to beat.
CHAMPION_ANNOTATION: Final = "cairn.dev/champion"
# On the children the operator applies: a digest of the manifest, to skip writes that change
# nothing.
MANIFEST_HASH_ANNOTATION: Final = "cairn.dev/manifest-hash"

# Manual rollout controls (`cairn promote|abort|resume`) on a ModelDeployment: annotations meant
# for people, each naming the version (and step) it acts on, so one left behind never acts on a
# later rollout.
PROMOTE_ANNOTATION: Final = "cairn.dev/promote"
ABORT_ANNOTATION: Final = "cairn.dev/abort"
RESUME_ANNOTATION: Final = "cairn.dev/resume"

# ContinuousTraining: the annotation that asks it for a run (any new value, which is the reason),
# and the label and annotations of the runs it starts, and of its dataset probes.
RETRAIN_ANNOTATION: Final = "cairn.dev/retrain"
CONTINUOUS_TRAINING_LABEL: Final = "cairn.dev/continuous-training"
TRIGGER_TYPE_ANNOTATION: Final = "cairn.dev/trigger-type"
TRIGGER_REASON_ANNOTATION: Final = "cairn.dev/trigger-reason"
TRIGGER_TIME_ANNOTATION: Final = "cairn.dev/trigger-time"
PROBE_LABEL: Final = "cairn.dev/dataset-probe"


def selector(labels: Mapping[str, str]) -> str:
    """The label selector that matches every one of `labels`."""
    return ",".join(f"{key}={value}" for key, value in labels.items())
