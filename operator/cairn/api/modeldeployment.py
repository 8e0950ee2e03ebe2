"""ModelDeployment: a served model, pinned to a version or following an alias, with its rollout."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from cairn.api.base import AGE_COLUMN, ApiModel, Crd, PrinterColumn, Resource, Scale
from cairn.api.cel import Matches, object_rules, rule
from cairn.api.common import (
    MESSAGE_MAX,
    TEXT_MAX,
    URI_MAX,
    Conditions,
    DnsSubdomain,
    Duration,
    HttpUrl,
    ModelName,
    ObjectStorage,
)
from cairn.api.model import AliasName
from cairn.api.monitoring import Monitoring, MonitoringStatus
from cairn.api.trainingrun import (
    EnvVars,
    ImagePullPolicy,
    NodeSelector,
    ResourceRequirements,
    Tolerations,
)

DEFAULT_SERVER_IMAGE = "docker.io/cairn/server:dev"
DEFAULT_PORT = 8080
DEFAULT_GRPC_PORT = 8081
DEFAULT_REPLICAS = 1
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
# Analysis settings a canary leaves unset come from the installation (Helm values
# defaults.analysis.*, the operator's CAIRN_ANALYSIS_* variables); these are its defaults.
DEFAULT_ANALYSIS_INTERVAL = "10s"
DEFAULT_FAILURE_LIMIT = 2
DEFAULT_MIN_REQUESTS = 20
VERSION_MAX = 2**31 - 1
STEPS_MAX = 32
ANALYSIS_METRICS_MAX = 16
QUERY_MAX = 4096
# The Deployments are named <name>-stable and <name>-canary, and <name> is also a label value.
NAME_MAX = 56
BUILTIN_METRICS = ("errorRate", "latencyP50", "latencyP99", "predictionShift", "accuracy")
DEFAULT_CONFIDENCE = 0.95
# A failure at least this certain (its p-value below 1 - this) rolls the canary back at once.
CERTAIN = 0.999
PODS_MAX = 64
STABLE, CANARY = "stable", "canary"
TRACKS = (STABLE, CANARY)


class ModelDeploymentPhase(StrEnum):
    PROGRESSING = "Progressing"
    AVAILABLE = "Available"
    DEGRADED = "Degraded"
    PAUSED = "Paused"


class ModelDeploymentConditionType(StrEnum):
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    # With spec.monitoring
    DRIFTED = "Drifted"
    PERFORMANCE_DEGRADED = "PerformanceDegraded"


class ModelDeploymentReason(StrEnum):
    """Reasons of a ModelDeployment's conditions and Events."""

    # Available
    CREATING = "Creating"
    SCALED_TO_ZERO = "ScaledToZero"
    MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
    MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
    # Progressing
    CANARY_PROGRESSING = "CanaryProgressing"
    ROLLOUT_PAUSED = "RolloutPaused"
    ROLLING_OUT = "RollingOut"
    COMPLETE = "Complete"
    NOTHING_TO_SERVE = "NothingToServe"
    # Degraded
    HEALTHY = "Healthy"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    TRAFFIC_ROUTING_FAILED = "TrafficRoutingFailed"
    ANALYSIS_FAILED = "AnalysisFailed"
    ABORTED = "Aborted"
    INVALID_SPEC = "InvalidSpec"
    # Why a version cannot be served
    MODEL_NOT_FOUND = "ModelNotFound"
    ALIAS_NOT_RESOLVED = "AliasNotResolved"
    VERSION_NOT_FOUND = "VersionNotFound"
    VERSION_NOT_READY = "VersionNotReady"
    UNSUPPORTED_ARTIFACT = "UnsupportedArtifact"
    # The serving pods cannot download the version's s3:// artifact, or it does not match.
    ARTIFACT_UNAVAILABLE = "ArtifactUnavailable"
    # Drifted and PerformanceDegraded
    DRIFT_DETECTED = "DriftDetected"
    NO_DRIFT = "NoDrift"
    NOT_ENOUGH_DATA = "NotEnoughData"
    NO_BASELINE = "NoBaseline"
    MONITORING_UNAVAILABLE = "MonitoringUnavailable"
    COLLECTING = "Collecting"
    BELOW_MINIMUM = "BelowMinimum"
    ABOVE_MAXIMUM = "AboveMaximum"
    WITHIN_LIMITS = "WithinLimits"
    NOT_ENOUGH_FEEDBACK = "NotEnoughFeedback"
    # Events only
    SERVING = "Serving"
    VERSION_CHANGED = "VersionChanged"
    AVAILABLE = "Available"
    ROLLOUT_STARTED = "RolloutStarted"
    STEP_STARTED = "StepStarted"
    PROMOTING = "Promoting"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


class AnalysisProvider(StrEnum):
    BUILTIN = "builtin"
    PROMETHEUS = "prometheus"


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class Pause(ApiModel):
    """Wait before the next step: for a duration, or until a person resumes the rollout."""

    duration: Duration | None = Field(
        default=None,
        description="How long to wait, for example 30s or 2m; analysis keeps running meanwhile. "
        "Unset: wait until `cairn resume` (or `cairn promote`).",
    )


class CanaryStep(ApiModel):
    """One step of a canary rollout: exactly one of setWeight or pause."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "has(self.setWeight) != has(self.pause)",
                "each canary step is exactly one of setWeight (for example {setWeight: 20}) "
                "or pause (for example {pause: {duration: 1m}} or {pause: {}})",
            )
        )
    )

    set_weight: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Percentage of requests the canary gets from this step on, 0 to 100. "
        "Without trafficRouting the split is made by replica counts: the canary runs "
        "round(replicas * weight / 100) pods, at least 1 for any weight above 0, and the stable "
        "keeps replicas minus that, at least 1, while the rollout runs; so with 1 replica any "
        "weight between 1 and 100 is 1 canary pod beside 1 stable pod (about 50%). "
        "status.canary.weight shows the split the pods really make.",
    )
    pause: Pause | None = Field(
        default=None,
        description="Wait here: {duration: 2m} for a while, {} until `cairn resume`.",
    )


class AnalysisMetric(ApiModel):
    """A metric the canary is judged by in every analysis interval."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "has(self.query) || self.name in " + str(list(BUILTIN_METRICS)).replace('"', "'"),
                "name must be errorRate, latencyP50, latencyP99, predictionShift or accuracy, "
                "unless query gives a PromQL query (provider prometheus)",
            ),
            rule(
                "has(self.max) || has(self.min) || has(self.maxRatioToStable)",
                "a metric needs a threshold: max, min or maxRatioToStable",
            ),
        )
    )

    name: Annotated[
        str,
        Field(min_length=1, max_length=63),
        Matches(
            r"^[A-Za-z][A-Za-z0-9_]*$",
            "must be a metric name: letters, digits and '_', starting with a letter",
        ),
    ] = Field(
        description="Built in, from the serving pods' counters: errorRate (the fraction of "
        "requests answered 5xx), latencyP50 or latencyP99 (seconds), predictionShift (the "
        "population stability index of the canary's predictions against the stable's in the "
        "same interval: a canary that answers but predicts differently) and accuracy (of the "
        "canary's answers that got a label by POST .../feedback). Or a name of your own with "
        "query."
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=QUERY_MAX,
        description="A PromQL query (provider prometheus) returning one number. {{namespace}}, "
        "{{deployment}}, {{track}} (stable or canary), {{pods}} (a regex of that track's pod "
        "names) and {{interval}} are replaced, so the same query measures the canary and the "
        'stable, for example sum(rate(my_total{namespace="{{namespace}}",pod=~"{{pods}}"}'
        "[{{interval}}])).",
    )
    max_: float | None = Field(
        default=None,
        alias="max",
        description="The canary fails the interval when its value is above this.",
    )
    min_: float | None = Field(
        default=None,
        alias="min",
        description="The canary fails the interval when its value is below this.",
    )
    max_ratio_to_stable: float | None = Field(
        default=None,
        ge=0,
        description="The canary fails the interval when its value is more than this many times "
        "the stable's in the same interval, for example 1.5.",
    )


# Without spec.strategy.canary.analysis.metrics.
DEFAULT_ANALYSIS_METRICS: tuple[AnalysisMetric, ...] = (
    AnalysisMetric.model_validate({"name": "errorRate", "max": 0.05}),
    AnalysisMetric.model_validate({"name": "latencyP99", "maxRatioToStable": 2.0}),
)


class PrometheusProvider(ApiModel):
    """Where the Prometheus server that scrapes the serving pods answers."""

    address: HttpUrl = Field(
        description="Base URL of the Prometheus HTTP API, for example "
        "http://prometheus.monitoring.svc:9090."
    )


class Analysis(ApiModel):
    """How the canary is judged: metrics compared per interval, against thresholds and the
    stable's values; too many failed intervals roll the rollout back."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "self.provider == 'prometheus' || !has(self.metrics) || "
                "self.metrics.all(m, !has(m.query))",
                "metrics with a query need provider: prometheus",
            ),
            rule(
                "self.provider != 'prometheus' || has(self.prometheus)",
                "provider prometheus needs prometheus.address",
            ),
        )
    )

    interval: Duration | None = Field(
        default=None,
        description="How often the metrics are measured and judged. Unset: the operator's "
        f"default, {DEFAULT_ANALYSIS_INTERVAL} unless the installation sets another (Helm value "
        "defaults.analysis.interval).",
    )
    failure_limit: int | None = Field(
        default=None,
        ge=1,
        description="The rollout is rolled back when this many intervals have failed. Unset: the "
        f"operator's default, {DEFAULT_FAILURE_LIMIT} unless the installation sets another "
        "(defaults.analysis.failureLimit).",
    )
    min_requests: int | None = Field(
        default=None,
        ge=1,
        description="Requests the canary must answer in an interval for it to count. An interval "
        "with fewer is Inconclusive: it never fails the canary and never lets a step complete, "
        "so a canary that got no traffic is not promoted. Unset: the operator's default, "
        f"{DEFAULT_MIN_REQUESTS} unless the installation sets another "
        "(defaults.analysis.minRequests).",
    )
    metrics: Annotated[list[AnalysisMetric], Field(max_length=ANALYSIS_METRICS_MAX)] | None = Field(
        default=None,
        description="The metrics and their thresholds. Unset: errorRate max 0.05 and "
        "latencyP99 maxRatioToStable 2.",
    )
    provider: AnalysisProvider = Field(
        default=AnalysisProvider.BUILTIN,
        description="builtin reads every serving pod's /metrics through the API server (no "
        "Prometheus needed); prometheus runs PromQL against prometheus.address: the metrics' "
        "own queries, and for errorRate, latencyP50 and latencyP99 built-in ones over "
        "cairn_serving_* with the namespace and pod target labels (Prometheus' usual pod "
        "scrape configuration); scrape the pods at least twice per interval.",
    )
    prometheus: PrometheusProvider | None = Field(
        default=None, description="The Prometheus server, for provider prometheus."
    )
    confidence: float | None = Field(
        default=None,
        ge=0.5,
        le=0.9999,
        description="How sure a breach of a threshold must be to fail an interval (built-in "
        "provider): errorRate by a binomial test against max (a two-proportion test against "
        "maxRatioToStable), latency by a binomial test against max and Mann-Whitney U against "
        "the stable's, predictionShift by a chi-squared test, accuracy by a binomial test. A "
        "breach less sure than this is Inconclusive; one sure beyond 99.9% rolls the canary back "
        f"at once, without waiting for failureLimit. Unset: {DEFAULT_CONFIDENCE}.",
    )


class GatewayApiRouting(ApiModel):
    """A Gateway API HTTPRoute whose backend weights the operator sets."""

    http_route: DnsSubdomain = Field(
        alias="httpRoute",
        description="Name of the HTTPRoute, in the ModelDeployment's namespace. In every rule "
        "that sends to the Service <name>-stable the operator sets the backendRefs <name>-stable "
        "(weight 100 - w) and <name>-canary (weight w) to each step's exact weight; the rest of "
        "the route is yours. The canary then runs ceil(replicas * w / 100) pods and the stable "
        "keeps all of its own.",
    )


class TrafficRouting(ApiModel):
    """Exact traffic weights through a router, instead of the replica ratio."""

    gateway_api: GatewayApiRouting | None = Field(
        default=None,
        alias="gatewayAPI",
        description="Split with a Gateway API HTTPRoute.",
    )


class CanaryStrategy(ApiModel):
    """Roll a new version out as a canary beside the stable, step by step, judged by analysis."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "size(self.steps) > 0",
                "strategy.canary.steps needs at least one step, for example "
                "[{setWeight: 20}, {pause: {duration: 1m}}]",
                field_path=".steps",
            )
        )
    )

    steps: Annotated[list[CanaryStep], Field(max_length=STEPS_MAX)] = Field(
        description="The rollout's steps, in order, for example [{setWeight: 20}, {pause: "
        "{duration: 1m}}, {setWeight: 50}, {pause: {}}]. After the last step the canary is "
        "promoted to stable."
    )
    analysis: Analysis | None = Field(
        default=None,
        description="How the canary is judged while it runs. Unset: no analysis, the steps "
        "alone decide.",
    )
    traffic_routing: TrafficRouting | None = Field(
        default=None,
        description="Exact weights through a router. Unset: requests split by the ratio of "
        "canary to stable replicas behind the one Service.",
    )

    @field_validator("steps")
    @classmethod
    def _some_steps(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        if not steps:
            raise ValueError("strategy.canary.steps needs at least one step")
        return steps


class Strategy(ApiModel):
    """How a new version replaces the one served."""

    canary: CanaryStrategy | None = Field(
        default=None,
        description="Canary steps with analysis. Unset: the stable Deployment is updated to the "
        "new version at once, pod by pod, never below the desired ready replicas.",
    )


class ModelDeploymentSpec(ApiModel):
    """Which model is served, how many replicas, and how a new version is rolled out."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "has(self.version) != has(self.alias)",
                "set exactly one of spec.version (a version number, for example 3) or "
                "spec.alias (an alias of the Model, for example production)",
            ),
            rule(
                # Both have defaults, which the API server applies before the rules run.
                "self.grpcPort == 0 || self.grpcPort != self.port",
                "spec.grpcPort must differ from spec.port (or be 0 to turn gRPC off)",
                field_path=".grpcPort",
            ),
        )
    )

    model: ModelName = Field(description="Name of the Model to serve, in the same namespace.")
    version: int | None = Field(
        default=None,
        ge=1,
        le=VERSION_MAX,
        description="Serve this version, ModelVersion <model>-v<version>. Exactly one of "
        "version or alias.",
    )
    alias: AliasName | None = Field(
        default=None,
        description="Follow this alias of the Model (its status.aliases): when the alias moves, "
        "the new version is rolled out. Exactly one of version or alias.",
    )
    replicas: int = Field(
        default=DEFAULT_REPLICAS,
        ge=0,
        description="Serving pods of the stable version; the scale subresource, so `kubectl "
        "scale` and a HorizontalPodAutoscaler can set it.",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        description="Container image that runs cairn-serve. Unset: the operator's default "
        f"server image ({DEFAULT_SERVER_IMAGE} unless the installation sets another).",
    )
    image_pull_policy: ImagePullPolicy = Field(
        default=ImagePullPolicy.IF_NOT_PRESENT,
        description="When the node pulls the image: Always, IfNotPresent or Never.",
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="CPU and memory requests and limits of each serving container. Unset: "
        "requests cpu 100m and memory 128Mi, limit memory 1Gi.",
    )
    env: EnvVars | None = Field(
        default=None,
        description="Extra environment variables of the server, for example CAIRN_MAX_BATCH_SIZE "
        "(`cairn-serve --help` lists them).",
    )
    port: int = Field(
        default=DEFAULT_PORT,
        ge=1,
        le=65535,
        description="Port of the server's REST API (Open Inference Protocol, KServe V1, "
        "/metrics), which the Service exposes as `http`.",
    )
    grpc_port: int = Field(
        default=DEFAULT_GRPC_PORT,
        ge=0,
        le=65535,
        description="Port of the Open Inference Protocol over gRPC, which the Service exposes "
        "as `grpc` (appProtocol grpc); 0 turns gRPC off.",
    )
    strategy: Strategy | None = Field(default=None, description="How a new version is rolled out.")
    progress_deadline_seconds: int = Field(
        default=DEFAULT_PROGRESS_DEADLINE_SECONDS,
        ge=1,
        description="Seconds a rollout may go without progress (pods that never become ready, "
        "crash loops) before it is reported Degraded and a canary rolled back.",
    )
    paused: bool = Field(
        default=False,
        description="true holds the rollout where it is (`cairn pause`); false lets it go on "
        "(`cairn resume`). Replicas still follow spec.replicas.",
    )
    storage: ObjectStorage | None = Field(
        default=None,
        description="Credentials and endpoint of the object store, for versions whose artifact "
        "is s3://: the serving pods download it (into the node's model cache) before loading.",
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None,
        description="ServiceAccount the serving pods run as, for example one with a workload "
        "identity that may read the artifacts' bucket; the namespace's default if unset. The "
        "pods get no API token either way.",
    )
    node_selector: NodeSelector | None = Field(
        default=None,
        description="Node labels the serving pods must be scheduled on, for example a pool of "
        "inference nodes. A change rolls the pods of the served version.",
    )
    tolerations: Tolerations | None = Field(
        default=None,
        description="Taints the serving pods tolerate, for example those that keep other pods "
        "off dedicated inference nodes. A change rolls the pods of the served version.",
    )
    monitoring: Monitoring | None = Field(
        default=None,
        description="Watch the stable version in production: drift from its training data "
        "(condition Drifted, which a ContinuousTraining can retrain on), live performance from "
        "feedback (PerformanceDegraded) and a sampled prediction log.",
    )


class TrackStatus(ApiModel):
    """The stable track: the version served to all traffic the canary does not get."""

    version: int | None = Field(default=None, ge=1, description="Version served.")
    replicas: int | None = Field(default=None, ge=0, description="Pods of the stable version.")
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Of those, the pods ready to answer requests."
    )


class MetricResult(ApiModel):
    """One analysis metric in the latest interval."""

    name: str = Field(max_length=63, description="The metric.")
    value: float | None = Field(default=None, description="The canary's value.")
    stable_value: float | None = Field(
        default=None, description="The stable's value in the same interval."
    )
    threshold: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="The threshold applied, in words, for example max 0.05 or <= 1.5x stable.",
    )
    verdict: Verdict = Field(description="Pass, Fail or Inconclusive (too few requests).")
    p_value: float | None = Field(
        default=None,
        description="How likely the breach is to be chance (the test named in analysis.confidence)"
        ": a Fail needs it below 1 - confidence.",
    )
    message: str | None = Field(
        default=None,
        max_length=MESSAGE_MAX,
        description="Why the metric could not be measured, for example a PromQL error.",
    )


class PodCounters(ApiModel):
    """A serving pod's cumulative counters at the last analysis interval, the baseline the next
    interval's increases are computed from (kept in status so a restart keeps the history)."""

    pod: str = Field(max_length=253, description="The pod.")
    track: str = Field(max_length=16, description="stable or canary.")
    requests: float = Field(ge=0, description="Requests answered so far.")
    errors: float = Field(ge=0, description="Of those, answered with a 5xx status.")
    buckets: Annotated[dict[str, float], Field(max_length=64)] = Field(
        description="Latency histogram: cumulative request count by upper bound (le), seconds."
    )
    predictions: Annotated[dict[str, float], Field(max_length=64)] | None = Field(
        default=None,
        description="Predictions so far: by class (class:<label>), or a regressor's histogram "
        "(le:<bound>, cumulative).",
    )
    feedback_rows: float | None = Field(
        default=None, ge=0, description="Answered rows given a label by POST .../feedback."
    )
    feedback_correct: float | None = Field(
        default=None, ge=0, description="Of those, the rows predicted right."
    )


class AnalysisSettings(ApiModel):
    """The settings a rollout's analysis runs with: the canary's own, and the installation's
    defaults for what it leaves unset."""

    interval: Duration = Field(description="How often the metrics are judged.")
    failure_limit: int = Field(ge=1, description="Failed intervals that roll the canary back.")
    min_requests: int = Field(
        ge=1, description="Requests the canary must answer for an interval to count."
    )


class CanaryStatus(ApiModel):
    """The canary track while a rollout is in progress."""

    version: int | None = Field(default=None, ge=1, description="Version being rolled out.")
    weight: int | None = Field(
        default=None, ge=0, le=100, description="Percentage of requests the canary gets."
    )
    step: int | None = Field(
        default=None, ge=0, description="Index of the current step in strategy.canary.steps."
    )
    step_started_at: datetime | None = Field(
        default=None, description="When the current step began (pause durations count from it)."
    )
    replicas: int | None = Field(default=None, ge=0, description="Pods of the canary version.")
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Of those, the pods ready to answer requests."
    )
    failed_intervals: int | None = Field(
        default=None, ge=0, description="Analysis intervals failed so far in this rollout."
    )
    certain_failure: bool | None = Field(
        default=None,
        description="The last interval failed beyond doubt (p < 0.001): the canary is rolled "
        "back without waiting for failureLimit.",
    )
    analysis_settings: AnalysisSettings | None = Field(
        default=None,
        description="The analysis settings in effect, with the installation's defaults filled in: "
        "what `cairn status` shows.",
    )
    analysis: Annotated[list[MetricResult], Field(max_length=ANALYSIS_METRICS_MAX)] | None = Field(
        default=None, description="Each metric's result in the latest interval."
    )
    verdict: Verdict | None = Field(
        default=None, description="The latest interval's verdict: Pass, Fail or Inconclusive."
    )
    passed_intervals: int | None = Field(
        default=None,
        ge=0,
        description="Analysis intervals passed in the current step; with analysis, a step "
        "completes only after at least one.",
    )
    last_analysis_at: datetime | None = Field(
        default=None, description="When the metrics were last read (the interval's end)."
    )
    counters: Annotated[list[PodCounters], Field(max_length=PODS_MAX)] | None = Field(
        default=None, description="Each serving pod's counters at the last interval."
    )
    promoting: bool | None = Field(
        default=None,
        description="The steps are done: the stable Deployment is being updated to the canary's "
        "version; the canary is removed once it is ready.",
    )
    started_at: datetime | None = Field(default=None, description="When the rollout began.")


class RollbackStatus(ApiModel):
    """The last rollout that was rolled back; its version is not tried again until the target
    changes."""

    version: int = Field(ge=1, description="The version rolled back.")
    reason: str = Field(
        max_length=63,
        description="AnalysisFailed, Aborted (`cairn abort`) or ProgressDeadlineExceeded.",
    )
    message: str = Field(max_length=MESSAGE_MAX, description="Why, for a person.")
    at: datetime | None = Field(default=None, description="When.")


class ModelDeploymentStatus(ApiModel):
    """What is served and how the rollout goes, as the operator sees it; written by it only."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    phase: ModelDeploymentPhase | None = Field(
        default=None,
        description="Progressing (pods starting, a rollout under way), Available (serving the "
        "target version), Degraded (the target cannot be served, or a rollout failed) or "
        "Paused (spec.paused).",
    )
    conditions: Conditions | None = Field(
        default=None,
        description="Available (ready pods answer requests), Progressing (a version or replica "
        "change is under way), Degraded (something needs a person; the reason says what) and, "
        "with spec.monitoring, Drifted and PerformanceDegraded.",
    )
    stable: TrackStatus | None = Field(default=None, description="The stable track.")
    canary: CanaryStatus | None = Field(
        default=None, description="The canary track; empty when no rollout is in progress."
    )
    rollback: RollbackStatus | None = Field(
        default=None,
        description="The version last rolled back, and why; cleared when another version is "
        "served.",
    )
    replicas: int | None = Field(
        default=None, ge=0, description="Serving pods of all tracks (the scale subresource's)."
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Serving pods of all tracks that are ready."
    )
    selector: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Label selector of the serving pods, for the scale subresource.",
    )
    url: str | None = Field(
        default=None,
        max_length=URI_MAX,
        description="Where the model answers inside the cluster: http://<service>.<namespace>"
        ".svc:<port> (Open Inference Protocol V2 under /v2/models/<model>).",
    )
    message: str | None = Field(
        default=None, max_length=MESSAGE_MAX, description="What happened last, for a person."
    )
    monitoring: MonitoringStatus | None = Field(
        default=None, description="The last monitoring window (with spec.monitoring)."
    )


class ModelDeployment(Resource):
    """A ModelDeployment serves a Model: a pinned version or the version an alias names, behind
    one Service, and rolls each new version out, as a canary with analysis when configured."""

    crd: ClassVar[Crd] = Crd(
        plural="modeldeployments",
        short_names=("mdep",),
        columns=(
            PrinterColumn("Model", ".spec.model", "The Model served."),
            PrinterColumn("Stable", ".status.stable.version", "Version serving.", type="integer"),
            PrinterColumn(
                "Canary", ".status.canary.version", "Version being rolled out.", type="integer"
            ),
            PrinterColumn(
                "Weight", ".status.canary.weight", "Canary's share of requests, %.", type="integer"
            ),
            PrinterColumn("Phase", ".status.phase", "Progressing, Available, Degraded or Paused."),
            AGE_COLUMN,
            PrinterColumn("URL", ".status.url", "Where it answers.", priority=1),
        ),
        rules=(
            rule(
                f"size(self.metadata.name) <= {NAME_MAX}",
                f"metadata.name must be at most {NAME_MAX} characters: it names the Service and "
                "the Deployments <name>-stable and <name>-canary",
            ),
            rule(
                r"self.metadata.name.matches(r'^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                "metadata.name must be a DNS label starting with a letter (it names the Service), "
                "for example iris",
            ),
        ),
        scale=Scale(
            spec_replicas_path=".spec.replicas",
            status_replicas_path=".status.replicas",
            label_selector_path=".status.selector",
        ),
    )

    kind: Literal["ModelDeployment"] = Field(
        default="ModelDeployment", description="ModelDeployment."
    )
    spec: ModelDeploymentSpec = Field(description="What is served and how it is rolled out.")
    status: ModelDeploymentStatus | None = Field(
        default=None, description="What is served and how the rollout goes."
    )
