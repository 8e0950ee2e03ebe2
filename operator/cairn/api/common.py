"""Types several kinds share: names, URIs, digests, quantities, conditions and artifact records."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
)

from cairn.api.base import ApiModel
from cairn.api.cel import Matches

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MESSAGE = (
    "must be a lowercase DNS label: letters a-z, digits and '-', starting and ending with a "
    "letter or digit (for example iris or fraud-detector)"
)
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A model's versions are named <model>-v<N>, and that name must stay a 63-character DNS label.
MODEL_NAME_MAX = 50
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
URI_MAX = 2048
TEXT_MAX = 1024
MESSAGE_MAX = 32768
METRIC_NAME_MAX = 128
METRICS_MAX = 256
PARAMS_MAX = 256
CONDITIONS_MAX = 16

ModelName = Annotated[
    str, Field(min_length=1, max_length=MODEL_NAME_MAX), Matches(DNS_LABEL, DNS_LABEL_MESSAGE)
]
DnsSubdomain = Annotated[
    str,
    Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX),
    Matches(
        DNS_SUBDOMAIN,
        "must be a lowercase DNS subdomain: DNS labels (a-z, 0-9, '-') joined by '.', "
        "for example iris-code",
    ),
]
Uri = Annotated[
    str,
    Field(min_length=1, max_length=URI_MAX),
    Matches(
        r"^[a-zA-Z][a-zA-Z0-9+.-]*:.+$",
        "must be a URI with a scheme, for example pvc://datasets/iris.csv or s3://bucket/key",
    ),
]
HttpUrl = Annotated[
    str,
    Field(min_length=1, max_length=URI_MAX),
    Matches(r"^https?://[^/?#]+(/.*)?$", "must be an http:// or https:// URL"),
]
ArtifactUri = Annotated[
    str,
    Field(min_length=1, max_length=URI_MAX),
    Matches(
        r"^(pvc|file|s3)://.+$",
        "must be pvc://<claim>/<path>, file://<path> or s3://<bucket>/<key>",
    ),
]
Digest = Annotated[
    str,
    Field(max_length=71),
    Matches(
        r"^sha256:[0-9a-f]{64}$",
        "must be a digest of the form sha256:<64 lowercase hexadecimal digits>",
    ),
]
Duration = Annotated[
    str,
    Field(max_length=32),
    Matches(
        r"^([0-9]+(ms|s|m|h))+$",
        "must be a duration: a number and a unit (ms, s, m or h), for example 30s, 2m or 1h30m",
    ),
]
MetricName = Annotated[str, Field(min_length=1, max_length=METRIC_NAME_MAX)]
# Map keys stay unconstrained: a structural schema cannot constrain them (no propertyNames).
Metrics = Annotated[dict[str, float], Field(max_length=METRICS_MAX)]

ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr
# A structural schema cannot say "string, number or boolean", and CEL cannot see into an object
# whose fields the schema leaves open: the value types are checked here, in Python, only.
Params = Annotated[
    dict[str, ParamValue],
    Field(max_length=PARAMS_MAX),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": PARAMS_MAX,
            "x-kubernetes-preserve-unknown-fields": True,
        }
    ),
]
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# A Kubernetes resource quantity (2, "500m", "4Gi"): the one union a structural schema allows.
Quantity = Annotated[
    int | Annotated[str, StringConstraints(pattern=QUANTITY)],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the object's state, shaped exactly like a Kubernetes metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="The aspect this condition reports, in CamelCase (for example Succeeded).",
    )
    status: ConditionStatus = Field(
        description="Whether the condition holds: True, False or Unknown."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation of the object when the condition was last set.",
    )
    last_transition_time: datetime = Field(
        description="When the status last changed from one value to another."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Why the condition is in this state: a CamelCase word a program can match on.",
    )
    message: str = Field(
        max_length=MESSAGE_MAX, description="What happened, in words, for a person to read."
    )


# Keyed by type, as every metav1.Condition list: one entry per type, merged by type.
Conditions = Annotated[
    list[Condition],
    Field(
        max_length=CONDITIONS_MAX,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    ),
]


class BaselineSummary(ApiModel):
    """What the baseline.json among the model files profiles: the training data (and the model's
    predictions on it) that production traffic is compared with (ModelDeployment
    spec.monitoring)."""

    rows: int = Field(ge=0, description="Rows profiled (an even sample of at most 100,000).")
    features: int = Field(ge=0, description="Features profiled, each in its own bins.")
    categorical: int = Field(default=0, ge=0, description="Of which categorical.")
    predictions: bool = Field(
        default=False, description="Whether the model's predictions on those rows are profiled."
    )


class ArtifactRef(ApiModel):
    """Where a trained model's files are, and the digest that proves they are the ones trained."""

    uri: ArtifactUri = Field(
        description="Where the model files are: pvc://<claim>/<path>, file://<path> or "
        "s3://<bucket>/<key>."
    )
    digest: Digest = Field(
        description="sha256 of the model files, sha256:<64 hex digits>; checked before the model "
        "is served."
    )
    size: int | None = Field(default=None, ge=0, description="Total size of the files in bytes.")
    format: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="How the model is serialised, for example joblib or onnx.",
    )
    baseline: BaselineSummary | None = Field(
        default=None,
        description="The profile of the training data saved with the model; unset: none (the "
        "version cannot be monitored for drift).",
    )


# The Secret a namespace's pods read object-store credentials from when their object names none.
DEFAULT_STORAGE_SECRET = "cairn-storage"


class ObjectStorage(ApiModel):
    """How the pods reach s3:// URIs. The operator never reads the Secret: the pods get its keys
    as environment variables."""

    secret_name: DnsSubdomain | None = Field(
        default=None,
        description="A Secret in this namespace whose keys become the environment of the pods "
        "that read or write s3:// URIs, as the AWS SDKs expect them: AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_REGION, and AWS_ENDPOINT_URL_S3 for "
        "an S3-compatible server (addressed path-style). A Secret named here must exist: the "
        "pods do not start without it. Unset: the Secret "
        f"{DEFAULT_STORAGE_SECRET} when the namespace has one (the installation may name "
        "another), else none, for pods with a workload identity (IRSA, GKE or Azure workload "
        "identity through spec.serviceAccountName) or credentials in their image.",
    )


class DatasetRef(ApiModel):
    """A dataset a model was trained on."""

    uri: Uri = Field(
        description="Where the dataset is, for example pvc://datasets/iris.csv or "
        "s3://bucket/iris.csv."
    )
    digest: Digest | None = Field(
        default=None,
        description="sha256 of the dataset's content, sha256:<64 hex digits>, recorded as lineage.",
    )


FEATURE_NAMES_MAX = 256


class TrainedDataset(DatasetRef):
    """The dataset a run trained on, as the trainer measured it."""

    rows: int | None = Field(default=None, ge=0, description="Rows (examples) in the dataset.")
    features: (
        Annotated[
            list[Annotated[str, Field(max_length=METRIC_NAME_MAX)]],
            Field(max_length=FEATURE_NAMES_MAX),
        ]
        | None
    ) = Field(
        default=None,
        description="Names of the model's input features, in order; left out when they did not "
        "fit in the trainer's summary.",
    )
    feature_count: int | None = Field(
        default=None, ge=0, description="How many input features the dataset has."
    )


class Evaluation(ApiModel):
    """The version that held the Model's promotion alias when the run trained, scored by the run
    on its own evaluation data beside the new model: the only fair comparison."""

    champion_version: int | None = Field(
        default=None,
        ge=1,
        description="The version compared with; unset when the alias named no version yet.",
    )
    champion_metrics: Metrics | None = Field(
        default=None,
        description="Its metrics on the run's evaluation data, for example {f1_macro: 0.91}.",
    )


class Trigger(ApiModel):
    """What started a run: a ContinuousTraining's trigger, or a person (no trigger)."""

    type: str = Field(max_length=32, description="schedule, dataset, code, request or condition.")
    reason: str = Field(max_length=TEXT_MAX, description="What fired, in words.")
    # Bounded like every string of an immutable record, for the CEL cost estimate.
    time: datetime = Field(
        description="When it fired (a scheduled run: its schedule time).",
        json_schema_extra={"maxLength": 64},
    )
    continuous_training: str | None = Field(
        default=None, max_length=DNS_LABEL_MAX, description="The ContinuousTraining."
    )
