import json
from pathlib import Path

import pytest

from cairn.api.common import METRICS_MAX
from cairn.training import (
    TERMINATION_MESSAGE_LIMIT,
    SummaryTooLarge,
    TrainingSession,
    encode_summary,
)
from cairn.training.summary import MAX_METRICS

ARTIFACT = {
    "uri": "pvc://cairn-artifacts/iris/iris-1",
    "digest": "sha256:" + "ab" * 32,
    "size": 174037,
    "format": "sklearn-joblib",
}
DATASET = {"uri": "sklearn://iris", "digest": "sha256:" + "cd" * 32}


def test_the_summary_is_compact_json_of_metrics_artifact_and_dataset() -> None:
    encoded = encode_summary({"accuracy": 0.97}, ARTIFACT, DATASET)

    assert json.loads(encoded) == {
        "metrics": {"accuracy": 0.97},
        "artifact": ARTIFACT,
        "dataset": DATASET,
    }
    assert b" " not in encoded


def test_what_is_unknown_is_left_out() -> None:
    assert json.loads(encode_summary({}, None, None)) == {"metrics": {}}


def test_too_many_metrics_keep_the_first_that_fit_and_say_so() -> None:
    metrics = {f"metric_{index:04d}_with_a_long_name": index / 7 for index in range(200)}

    encoded = encode_summary(metrics, ARTIFACT, DATASET)
    summary = json.loads(encoded)

    assert len(encoded) <= TERMINATION_MESSAGE_LIMIT
    assert summary["truncated"] is True
    kept = list(summary["metrics"].items())
    assert 0 < len(kept) < len(metrics)
    assert kept == list(metrics.items())[: len(kept)]
    # As many as fit: one more would not.
    one_more = dict(list(metrics.items())[: len(kept) + 1])
    assert len(json.dumps({**summary, "metrics": one_more}, separators=(",", ":"))) > (
        TERMINATION_MESSAGE_LIMIT
    )


def test_no_more_metrics_than_status_holds() -> None:
    metrics = {f"m{index}": 1.0 for index in range(MAX_METRICS + 10)}

    summary = json.loads(encode_summary(metrics, None, None, limit=1 << 20))

    assert list(summary["metrics"]) == list(metrics)[:MAX_METRICS]
    assert summary["truncated"] is True
    assert MAX_METRICS == METRICS_MAX


def test_a_summary_too_large_without_metrics_is_an_error() -> None:
    with pytest.raises(SummaryTooLarge, match="shorten the artifact and dataset URIs"):
        encode_summary({}, {**ARTIFACT, "uri": "pvc://a/" + "x" * 5000}, None)


def test_finish_writes_the_termination_log_once_and_returns_the_summary(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    session = TrainingSession({"CAIRN_TERMINATION_LOG": str(log)}, finish_at_exit=False)
    session.log_metric("accuracy", 0.9)

    assert session.finish() == {"metrics": {"accuracy": 0.9}}
    assert json.loads(log.read_bytes()) == {"metrics": {"accuracy": 0.9}}
    log.unlink()
    session.finish()
    assert not log.exists()  # unchanged summary: nothing rewritten
    session.log_metric("loss", 0.1)
    session.finish()
    assert json.loads(log.read_bytes())["metrics"] == {"accuracy": 0.9, "loss": 0.1}
