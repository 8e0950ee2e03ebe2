"""The run summary the trainer leaves in its container's termination message for the operator.

    {"metrics": {"accuracy": 0.97, ...},
     "artifact": {"uri": "pvc://...", "digest": "sha256:...", "size": 123,
                  "format": "sklearn-joblib"},
     "dataset": {"uri": "sklearn://iris", "digest": "sha256:...", "rows": 150,
                 "featureCount": 4, "features": ["sepal length (cm)", ...]},
     "evaluation": {"championVersion": 3, "championMetrics": {"accuracy": 0.95}},
     "fairness": [{"sensitiveFeature": "sex", "demographicParityDifference": 0.04, ...,
                   "groups": [{"group": "female", "count": 612, "selectionRate": 0.51, ...}]}],
     "truncated": true}

A run that fails for a reason the SDK knows (its model could not be uploaded) leaves
`{"failure": {"reason": "ArtifactUploadFailed", "message": "..."}}` instead, which the operator
reports as the run's failure reason.

Compact JSON; "artifact" and "dataset" appear once a model was saved and a dataset loaded,
"evaluation" when the run scored the champion (the promotion alias's holder) on its own
evaluation data, "fairness" when it measured group fairness, and "truncated" only when metrics
had to be left out: beyond the first 256, or to fit in 4096 bytes. The dataset's feature names
are left out before any metric is.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

# The kubelet keeps at most this many bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# Status holds at most this many metrics (cairn.api's limit).
MAX_METRICS = 256


class SummaryTooLarge(ValueError):
    """A summary over the limit even without metrics (URIs that long are a mistake)."""


def encode_summary(
    metrics: Mapping[str, float],
    artifact: Mapping[str, Any] | None,
    dataset: Mapping[str, Any] | None,
    evaluation: Mapping[str, Any] | None = None,
    fairness: Sequence[Mapping[str, Any]] | None = None,
    *,
    limit: int = TERMINATION_MESSAGE_LIMIT,
) -> bytes:
    """The summary as UTF-8 JSON of at most `limit` bytes, keeping the first metrics that fit."""
    items = list(metrics.items())

    def encoded(count: int) -> bytes:
        summary: dict[str, Any] = {"metrics": dict(items[:count])}
        if artifact is not None:
            summary["artifact"] = dict(artifact)
        if dataset is not None:
            summary["dataset"] = dict(dataset)
        if evaluation is not None:
            summary["evaluation"] = dict(evaluation)
        if fairness:
            summary["fairness"] = [dict(feature) for feature in fairness]
        if count < len(items):
            summary["truncated"] = True
        return json.dumps(summary, separators=(",", ":"), allow_nan=False).encode()

    most = min(len(items), MAX_METRICS)
    if len(candidate := encoded(most)) <= limit:
        return candidate
    if dataset is not None and "features" in dataset:
        # The feature names go first: every metric is worth more than them.
        return encode_summary(
            metrics,
            artifact,
            {k: v for k, v in dataset.items() if k != "features"},
            evaluation,
            fairness,
            limit=limit,
        )
    if len(encoded(0)) > limit:
        raise SummaryTooLarge(
            f"the run summary exceeds {limit} bytes without any metric: shorten the artifact "
            "and dataset URIs, or record the fairness of fewer sensitive features"
        )
    # The size grows with the number of metrics kept: find the most that fit.
    fits, too_many = 0, most
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        fits, too_many = (middle, too_many) if len(encoded(middle)) <= limit else (fits, middle)
    return encoded(fits)


def encode_failure(reason: str, message: str, *, limit: int = TERMINATION_MESSAGE_LIMIT) -> bytes:
    """A failure for the termination message, its message shortened to fit in `limit` bytes."""
    text = message
    while True:
        encoded = json.dumps(
            {"failure": {"reason": reason, "message": text}}, separators=(",", ":")
        ).encode()
        if len(encoded) <= limit or not text:
            return encoded
        text = text[: max(0, len(text) - (len(encoded) - limit) - 3)] + "..."
