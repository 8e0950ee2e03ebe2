"""TrainingRun: one training execution, run as a Job, whose result becomes a ModelVersion."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field

from cairn.api.base import AGE_COLUMN, ApiModel, Crd, PrinterColumn, Resource
from cairn.api.cel import Matches, immutable_except, rule
from cairn.api.common import (
    DNS_LABEL_MAX,
    DNS_SUBDOMAIN_MAX,
    MESSAGE_MAX,
    TEXT_MAX,
    ArtifactRef,
    ArtifactUri,
    Conditions,
    DatasetRef,
    Digest,
    DnsSubdomain,
    Evaluation,
    Metrics,
    ModelName,
    ObjectStorage,
    Params,
    Quantity,
    TrainedDataset,
)
from cairn.api.fairness import Fairness

DEFAULT_IMAGE = "docker.io/cairn/trainer:dev"
DEFAULT_CODE_MOUNT_PATH = "/opt/cairn/code"
# What runs when spec.command is unset and spec.code names a ConfigMap without a key.
DEFAULT_CODE_FILE = "train.py"
# The claim of the default output URI, pvc://cairn-artifacts/<model>/<run>.
DEFAULT_ARTIFACTS_CLAIM = "cairn-artifacts"
ARGUMENTS_MAX = 256
ARGUMENT_MAX = 8192
ENV_MAX = 128
ENV_VALUE_MAX = 32768
MAP_MAX = 64


class ImagePullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class TrainingRunPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrainingRunConditionType(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    REGISTERED = "Registered"


class TrainingRunReason(StrEnum):
    """Why a run is where it is: the reason of its Running, Succeeded and Failed conditions,
    and its status.failureReason when it failed."""

    JOB_CREATED = "JobCreated"
    ARTIFACT_CLAIM_MISSING = "ArtifactClaimMissing"
    CODE_MISSING = "CodeConfigMapMissing"
    UNSCHEDULABLE = "Unschedulable"
    POD_PENDING = "PodPending"
    SUSPENDED = "Suspended"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    # Failures
    IMAGE_MISSING = "ImageMissing"
    CONFIG_ERROR = "ContainerConfigError"
    OOM_KILLED = "OOMKilled"
    NON_ZERO_EXIT = "NonZeroExit"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    BAD_SUMMARY = "InvalidTrainerSummary"
    JOB_LOST = "JobLost"
    INVALID_SPEC = "InvalidSpec"
    # The model was trained and saved, and the object store refused or could not take it.
    ARTIFACT_UPLOAD_FAILED = "ArtifactUploadFailed"


FAILURE_REASONS = (
    TrainingRunReason.NON_ZERO_EXIT,
    TrainingRunReason.OOM_KILLED,
    TrainingRunReason.DEADLINE_EXCEEDED,
    TrainingRunReason.RETRIES_EXHAUSTED,
    TrainingRunReason.IMAGE_MISSING,
    TrainingRunReason.CONFIG_ERROR,
    TrainingRunReason.BAD_SUMMARY,
    TrainingRunReason.JOB_LOST,
    TrainingRunReason.ARTIFACT_UPLOAD_FAILED,
    TrainingRunReason.INVALID_SPEC,
)


class RegistrationReason(StrEnum):
    """The reason of a run's Registered condition."""

    REGISTERING = "Registering"
    REGISTERED = "Registered"
    # The run's Model cannot be read, created or used (being deleted, refused, forbidden).
    MODEL_UNAVAILABLE = "ModelUnavailable"
    # The API server refused the ModelVersion (what the trainer reported breaks its schema).
    VERSION_REFUSED = "VersionRefused"
    # The trainer reported no artifact: nothing to register.
    NO_ARTIFACT = "NoArtifact"
    # A transient error: registration is retried.
    RETRYING = "Retrying"


Argument = Annotated[str, Field(max_length=ARGUMENT_MAX)]
ResourceList = Annotated[dict[str, Quantity], Field(max_length=32)]


class ConfigMapCode(ApiModel):
    """A ConfigMap in the run's namespace holding the training code."""

    name: DnsSubdomain = Field(description="Name of the ConfigMap.")
    key: (
        Annotated[
            str,
            Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX),
            Matches(
                r"^[-._a-zA-Z0-9]+$",
                "must be a ConfigMap key: letters, digits, '-', '_' and '.'",
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Mount only this key, as a file of the same name. Without it, every key of "
        "the ConfigMap becomes a file.",
    )


class CodeSource(ApiModel):
    """Training code mounted into the training container, so the image need not contain it."""

    config_map: ConfigMapCode = Field(description="The ConfigMap holding the code.")
    mount_path: Annotated[
        str,
        Field(max_length=TEXT_MAX),
        Matches(r"^/.*$", "must be an absolute path, for example /opt/cairn/code"),
    ] = Field(
        default=DEFAULT_CODE_MOUNT_PATH,
        description="Directory the code's files appear in, inside the container.",
    )
    revision: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Version of the code, for example a Git commit; recorded in the "
        "ModelVersion's lineage.",
    )


class ResourceRequirements(ApiModel):
    """Compute resources of the training container, as in a Pod's container."""

    requests: ResourceList | None = Field(
        default=None,
        description='Resources the container is guaranteed, for example {cpu: "1", memory: 2Gi}.',
    )
    limits: ResourceList | None = Field(
        default=None,
        description='Most the container may use; GPUs go here, for example {"nvidia.com/gpu": 1}.',
    )


class EnvVar(ApiModel):
    """An environment variable of a container."""

    name: str = Field(
        min_length=1, max_length=TEXT_MAX, description="Name of the variable; unique in the list."
    )
    value: str | None = Field(
        default=None, max_length=ENV_VALUE_MAX, description="Value of the variable."
    )


# A list keyed by name, so the API server refuses two variables of the same name.
EnvVars = Annotated[
    list[EnvVar],
    Field(
        max_length=ENV_MAX,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    ),
]


class Toleration(ApiModel):
    """A taint the pod tolerates, as in a Pod's spec."""

    key: str | None = Field(
        default=None,
        max_length=DNS_SUBDOMAIN_MAX + 1 + DNS_LABEL_MAX,
        description="Taint key to match; empty with operator Exists matches every taint.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists, or Equal (the default) to match the value too."
    )
    value: str | None = Field(
        default=None, max_length=DNS_LABEL_MAX, description="Taint value to match with Equal."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With NoExecute: how long the pod stays bound to a node after the taint "
        "appears; unset means for ever.",
    )


# Where a pod may run, as in a Pod's spec: the training pods' and the serving pods' alike.
NodeSelector = Annotated[
    dict[str, Annotated[str, Field(max_length=DNS_LABEL_MAX)]], Field(max_length=MAP_MAX)
]
Tolerations = Annotated[list[Toleration], Field(max_length=MAP_MAX)]


class OutputSpec(ApiModel):
    """Where the trained model is written."""

    uri: ArtifactUri | None = Field(
        default=None,
        description="Artifact location: pvc://<claim>/<path> (the claim is mounted into the "
        "training pod), s3://<bucket>/<prefix> (the model is written to a directory of the pod "
        "and uploaded there, one object per file; credentials from spec.storage), or "
        "file:///<path> (a directory of the node: single-node development only). "
        "Default: pvc://cairn-artifacts/<model>/<run>.",
    )


class ChampionRef(ApiModel):
    """A version the training code can load to compare with."""

    version: int = Field(ge=1, description="The version number.")
    uri: ArtifactUri = Field(description="Its artifact.")
    digest: Digest = Field(description="Its artifact's digest, checked before it is loaded.")


class TrainingRunTemplate(ApiModel):
    """How to train: every setting of a TrainingRun but the model it trains (what a
    ContinuousTraining makes its runs from)."""

    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        description="Container image that runs the training code. Unset: the operator's "
        f"default trainer image ({DEFAULT_IMAGE} unless the installation sets another).",
    )
    image_pull_policy: ImagePullPolicy = Field(
        default=ImagePullPolicy.IF_NOT_PRESENT,
        description="When the node pulls the image: Always, IfNotPresent or Never.",
    )
    command: Annotated[list[Argument], Field(max_length=ARGUMENTS_MAX)] | None = Field(
        default=None,
        description="Entrypoint of the training container. Unset: `python <code.mountPath>/"
        "<code.configMap.key, or train.py>` when spec.code is set, else the image's entrypoint.",
    )
    args: Annotated[list[Argument], Field(max_length=ARGUMENTS_MAX)] | None = Field(
        default=None,
        description="Arguments to the entrypoint, for example [--epochs, '10'].",
    )
    code: CodeSource | None = Field(
        default=None, description="Training code to mount into the container from a ConfigMap."
    )
    params: Params | None = Field(
        default=None,
        description="Hyperparameters: names to strings, numbers or booleans. The trainer reads "
        "them as JSON from CAIRN_PARAMS; they are recorded in the ModelVersion.",
    )
    dataset: DatasetRef | None = Field(
        default=None,
        description="The dataset to train on; its URI is passed as CAIRN_DATASET_URI.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU, memory and GPU requests and limits of the trainer."
    )
    env: EnvVars | None = Field(
        default=None, description="Extra environment variables of the trainer."
    )
    node_selector: NodeSelector | None = Field(
        default=None, description="Node labels the training pod must be scheduled on."
    )
    tolerations: Tolerations | None = Field(
        default=None, description="Taints the training pod tolerates."
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None,
        description="ServiceAccount the training pod runs as; the namespace's default if unset.",
    )
    backoff_limit: int = Field(
        default=0,
        ge=0,
        description="Retries after a failed attempt before the run fails. 0: fail on the first "
        "failure.",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Seconds the run may take, all attempts together, before it fails with "
        "DeadlineExceeded.",
    )
    suspend: bool = Field(
        default=False,
        description="true pauses the run: running pods are stopped and none are started until "
        "it is set back to false; a run created suspended gets its Job when it is resumed. The "
        "one field that may change after creation.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Seconds after the run finishes when its Job and pods are deleted; the "
        "TrainingRun and its results stay. Kept until the run is deleted if unset.",
    )
    output: OutputSpec | None = Field(
        default=None, description="Where the trained model is written."
    )
    storage: ObjectStorage | None = Field(
        default=None,
        description="Credentials and endpoint of the object store, for s3:// outputs, datasets "
        "and champions.",
    )
    # `register` would shadow pydantic's (ABCMeta's) own `register`.
    register_: bool = Field(
        default=True,
        alias="register",
        description="Whether a successful run is registered as a ModelVersion of spec.model.",
    )


class TrainingRunSpec(TrainingRunTemplate):
    """What to train and how. Fixed at creation, except suspend."""

    model_config = ConfigDict(
        json_schema_extra=immutable_except(
            "suspend",
            message="{field} cannot change: a TrainingRun is the record of one training run. "
            "Create a new TrainingRun with the new settings (only spec.suspend may change).",
        )
    )

    model: ModelName = Field(
        description="Name of the Model this run trains (created if missing). The trained model "
        "is registered as ModelVersion <model>-v<N>. A DNS label of at most 50 characters."
    )


class TrainingRunStatus(ApiModel):
    """What the operator observed of the run. Written by the operator only."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    phase: TrainingRunPhase | None = Field(
        default=None, description="Where the run is: Pending, Running, Succeeded or Failed."
    )
    conditions: Conditions | None = Field(
        default=None,
        description="Running, Succeeded, Failed and Registered, each True, False or Unknown with "
        "a reason. `kubectl wait --for=condition=Succeeded` waits for the run to finish well.",
    )
    job_name: str | None = Field(default=None, description="Name of the Job running the trainer.")
    image: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="The image the training container ran, as the kubelet reports it.",
    )
    image_id: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="The image's digest as the kubelet reports it (the pod's imageID), for "
        "example docker.io/cairn/trainer@sha256:...: what exactly trained the model.",
    )
    attempts: int | None = Field(
        default=None, ge=0, description="Pods started so far, retries included."
    )
    start_time: datetime | None = Field(default=None, description="When the first pod started.")
    completion_time: datetime | None = Field(
        default=None, description="When the run succeeded or failed."
    )
    metrics: Metrics | None = Field(
        default=None, description="Metrics the trainer reported, for example {accuracy: 0.97}."
    )
    key_metric: str | None = Field(
        default=None,
        description="The run's headline metric as name=value, for example accuracy=0.97, "
        "for `kubectl get`.",
    )
    artifact: ArtifactRef | None = Field(
        default=None, description="The trained model's files, as the trainer reported them."
    )
    dataset: TrainedDataset | None = Field(
        default=None,
        description="The dataset trained on, with the digest, rows and features the trainer "
        "measured.",
    )
    evaluation: Evaluation | None = Field(
        default=None,
        description="The promotion alias's holder, scored by the run beside its own model.",
    )
    fairness: Fairness | None = Field(
        default=None,
        description="Group fairness per sensitive feature on the run's evaluation data, as the "
        "trainer measured it (cairn.training.log_fairness).",
    )
    champion: ChampionRef | None = Field(
        default=None,
        description="The version that held the Model's promotion alias when the run started, "
        "mounted for the training code (cairn.training.champion()).",
    )
    model_version: str | None = Field(
        default=None, description="Name of the ModelVersion this run was registered as."
    )
    version: int | None = Field(
        default=None, ge=1, description="Version number this run was registered as in its Model."
    )
    failure_reason: str | None = Field(
        default=None,
        description="Why the run failed, as a word a program can match on: "
        + ", ".join(FAILURE_REASONS[:-1])
        + f" or {FAILURE_REASONS[-1]}.",
    )
    message: str | None = Field(
        default=None,
        max_length=MESSAGE_MAX,
        description="What happened last, for a person: on failure, the reason and the last lines "
        "of the trainer's log.",
    )


class TrainingRun(Resource):
    """A TrainingRun trains a model once, in a Job's pod, and registers the result as a
    ModelVersion of its Model. It is a record: its spec cannot change after creation."""

    crd: ClassVar[Crd] = Crd(
        plural="trainingruns",
        short_names=("tr",),
        columns=(
            PrinterColumn("Phase", ".status.phase", "Where the run is."),
            PrinterColumn("Model", ".spec.model", "The Model this run trains."),
            PrinterColumn("Metric", ".status.keyMetric", "The run's headline metric."),
            PrinterColumn("Version", ".status.modelVersion", "The ModelVersion registered."),
            AGE_COLUMN,
            PrinterColumn("Reason", ".status.failureReason", "Why it failed.", priority=1),
        ),
        rules=(
            rule(
                "size(self.metadata.name) <= 63",
                "metadata.name must be at most 63 characters: it also names the run's Job",
            ),
        ),
    )

    kind: Literal["TrainingRun"] = Field(default="TrainingRun", description="TrainingRun.")
    spec: TrainingRunSpec = Field(description="What to train and how.")
    status: TrainingRunStatus | None = Field(
        default=None, description="What the operator observed of the run."
    )
