"""ModelDeployment.spec.monitoring and status.monitoring: watching what the served model is asked
(drift from its training data), how right it is (labels that arrive later), and a sample of its
answers kept for retraining."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from cairn.api.base import ApiModel
from cairn.api.cel import Matches, object_rules, rule
from cairn.api.common import MESSAGE_MAX, URI_MAX, Duration

DEFAULT_WINDOW = "5m"
DEFAULT_WINDOW_ROWS = 200
DEFAULT_PERFORMANCE_ROWS = 50
DEFAULT_DRIFT_SHARE = 0.5
FEATURES_SHOWN_MAX = 20  # status keeps the features that drifted most
FEATURE_NAME_MAX = 253


class DriftTest(StrEnum):
    AUTO = "auto"
    CHI_SQUARED = "chiSquared"
    PSI = "psi"
    JENSEN_SHANNON = "jensenShannon"


class PerformanceMetric(StrEnum):
    ACCURACY = "accuracy"
    MEAN_ABSOLUTE_ERROR = "meanAbsoluteError"


class MonitoringVerdict(StrEnum):
    COLLECTING = "Collecting"
    NO_DRIFT = "NoDrift"
    DRIFTED = "Drifted"
    NOT_ENOUGH_DATA = "NotEnoughData"
    NO_BASELINE = "NoBaseline"
    UNAVAILABLE = "Unavailable"


class MonitoringWindow(ApiModel):
    """How much traffic one judgement takes: at least `duration`, and at least `minRows` rows
    (a window waits for them, up to ten durations, then says NotEnoughData)."""

    duration: Duration = Field(
        default=DEFAULT_WINDOW, description=f"Default: {DEFAULT_WINDOW}, for example 1m or 1h."
    )
    min_rows: int = Field(
        default=DEFAULT_WINDOW_ROWS,
        ge=1,
        le=100_000_000,
        description=f"Rows a window needs before it is judged. Default: {DEFAULT_WINDOW_ROWS}.",
    )


class DriftSettings(ApiModel):
    """How a window is compared with the training data, feature by feature."""

    test: DriftTest = Field(
        default=DriftTest.AUTO,
        description="auto (chi-squared with a Bonferroni correction for windows of up to 1000 "
        "rows; PSI for numeric and Jensen-Shannon for categorical features above), chiSquared, "
        "psi or jensenShannon.",
    )
    threshold: float | None = Field(
        default=None,
        ge=1e-9,
        le=10,
        description="chiSquared: the significance level for all features together (default "
        "0.05); psi: the PSI from which a feature drifted (default 0.2); jensenShannon: the "
        "distance (default 0.1). With auto it applies to whichever test runs.",
    )
    drift_share: float = Field(
        default=DEFAULT_DRIFT_SHARE,
        ge=0.01,
        le=1,
        description="The data drifted (condition Drifted) when at least this share of the "
        f"features did. Default: {DEFAULT_DRIFT_SHARE}.",
    )


class PerformanceSettings(ApiModel):
    """Live performance from labels sent to the server after its answers (POST
    /v2/models/<model>/feedback with each answer's id)."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "self.metric != 'accuracy' || has(self.min)",
                "performance.metric accuracy needs performance.min, for example 0.9",
                field_path=".min",
            ),
            rule(
                "self.metric != 'meanAbsoluteError' || has(self.max)",
                "performance.metric meanAbsoluteError needs performance.max",
                field_path=".max",
            ),
        )
    )

    metric: PerformanceMetric = Field(
        default=PerformanceMetric.ACCURACY,
        description="accuracy (a classifier: the share of labelled rows predicted right) or "
        "meanAbsoluteError (a regressor).",
    )
    min: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="PerformanceDegraded when accuracy in a window is below this.",
    )
    max: float | None = Field(
        default=None,
        ge=0,
        description="PerformanceDegraded when the mean absolute error in a window is above this.",
    )
    min_rows: int = Field(
        default=DEFAULT_PERFORMANCE_ROWS,
        ge=1,
        le=100_000_000,
        description="Labelled rows a window needs to be judged. Default: "
        f"{DEFAULT_PERFORMANCE_ROWS}.",
    )


class PredictionLogSettings(ApiModel):
    """A sample of requests and answers, as JSON Lines files per pod and hour."""

    sample_rate: float = Field(
        ge=0.0001, le=1, description="The share of requests logged, for example 0.05."
    )
    uri: (
        Annotated[
            str,
            Field(max_length=URI_MAX),
            Matches(
                r"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/.*)?$",
                "must be pvc://<claim>/<path>, for example pvc://cairn-artifacts/logs/iris",
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Where: pvc://<claim>/<path>, mounted writable into the serving pods. "
        "Unset: pvc://cairn-artifacts/predictions/<model>. Features the Model names in "
        "spec.sensitiveFeatures are never written.",
    )


class Monitoring(ApiModel):
    """Watch the stable version in production: drift of its inputs and predictions from its
    training data, live performance from feedback, and a sampled prediction log."""

    window: MonitoringWindow = Field(
        default_factory=MonitoringWindow,
        json_schema_extra={"default": {}},
        description="How much traffic one judgement takes.",
    )
    drift: DriftSettings = Field(
        default_factory=DriftSettings,
        json_schema_extra={"default": {}},
        description="How drift is tested.",
    )
    performance: PerformanceSettings | None = Field(
        default=None, description="Live performance from feedback, and its limit."
    )
    log: PredictionLogSettings | None = Field(default=None, description="A sampled prediction log.")


class FeatureDrift(ApiModel):
    """One feature's (or the predictions') test in the last window."""

    name: str = Field(max_length=FEATURE_NAME_MAX, description="The feature.")
    test: DriftTest = Field(description="chiSquared, psi or jensenShannon.")
    statistic: float = Field(description="The test's statistic (PSI, distance, chi-squared).")
    p_value: float | None = Field(default=None, description="chiSquared: the p-value.")
    threshold: float = Field(
        description="chiSquared: the p-value below which it drifted (corrected); otherwise the "
        "statistic from which it did."
    )
    drifted: bool = Field(description="Whether it drifted.")


class PerformanceStatus(ApiModel):
    metric: PerformanceMetric = Field(description="accuracy or meanAbsoluteError.")
    value: float | None = Field(default=None, description="In the last judged window.")
    rows: int = Field(ge=0, description="Labelled rows in that window.")


class MonitoringStatus(ApiModel):
    """The last monitoring window of the stable version."""

    version: int = Field(ge=1, description="The version watched (the stable one).")
    verdict: MonitoringVerdict = Field(
        description="Collecting (the first window is still filling), NoDrift, Drifted, "
        "NotEnoughData (too few rows: never read as drift or no drift), NoBaseline (the version "
        "has no profile of its training data) or Unavailable (no pod answered)."
    )
    message: str | None = Field(default=None, max_length=MESSAGE_MAX, description="Why.")
    window_start: datetime | None = Field(default=None, description="When the window began.")
    window_end: datetime | None = Field(default=None, description="When it was judged.")
    rows: int | None = Field(default=None, ge=0, description="Rows the window counted.")
    drifted_features: int | None = Field(
        default=None, ge=0, description="How many features drifted."
    )
    features_compared: int | None = Field(
        default=None, ge=0, description="How many features were compared."
    )
    features: Annotated[list[FeatureDrift], Field(max_length=FEATURES_SHOWN_MAX)] | None = Field(
        default=None,
        description=f"The {FEATURES_SHOWN_MAX} features that drifted most, most first.",
    )
    prediction: FeatureDrift | None = Field(
        default=None, description="The predictions' distribution against the training data's."
    )
    performance: PerformanceStatus | None = Field(
        default=None, description="Live performance from feedback in the window."
    )
    windows: int | None = Field(default=None, ge=0, description="Windows judged so far.")
