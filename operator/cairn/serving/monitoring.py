"""What the model server keeps for monitoring: every input value and every prediction counted
into the bins of the version's baseline (the training data's profile, monitoring.profile).

Counters only grow, like Prometheus counters: a reader takes the difference between two reads,
and `instance` (new at every start) tells it when the counters started again from zero. Memory
is a few integers per bin per feature, whatever the traffic. Served as JSON at
GET /v2/models/{name}/monitoring, with the baseline itself, so that whoever reads it needs
nothing else.
"""

import datetime
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cairn.monitoring.profile import FILE, Profile, ProfileError

NO_BASELINE = (
    "no baseline: this version was saved before Cairn profiled training data; train it again "
    "to monitor it"
)


def read_baseline(model_dir: Path, features: Sequence[str]) -> tuple[Profile | None, str | None]:
    """The version's baseline, or why there is none (`features`: the model's inputs)."""
    path = model_dir / FILE
    try:
        baseline = Profile.from_json(path.read_text("utf-8"), str(path))
    except FileNotFoundError:
        return None, NO_BASELINE
    except (OSError, ProfileError) as error:
        return None, f"the baseline cannot be read: {error}"
    if len(baseline.features) != len(features):
        return None, (
            f"the baseline profiles {len(baseline.features)} features and the model takes "
            f"{len(features)}: monitoring is off for this version"
        )
    return baseline, None


class Monitor:
    """Counts of the served inputs and predictions in the baseline's bins."""

    def __init__(self, baseline: Profile | None, reason: str | None) -> None:
        self.baseline = baseline
        self.reason = reason
        self.instance = uuid.uuid4().hex
        self.started = datetime.datetime.now(datetime.UTC)
        self._lock = threading.Lock()
        self.rows = 0
        features = baseline.features if baseline else ()
        self._counts = [np.zeros(h.bins, dtype=np.int64) for _, h in features]
        self._missing = [0] * len(features)
        prediction = baseline.prediction if baseline else None
        self._predicted = np.zeros(prediction.bins, dtype=np.int64) if prediction else None
        self._predicted_missing = 0

    def observe(self, rows: NDArray[Any], predictions: NDArray[Any] | None) -> None:
        """Count a batch: `rows` as the model took them, `predictions` its labels or values."""
        baseline = self.baseline
        if baseline is None or rows.ndim != 2 or rows.shape[1] != len(self._counts):
            return
        counted = [h.count(rows[:, i]) for i, (_, h) in enumerate(baseline.features)]
        answered = None
        if predictions is not None and baseline.prediction is not None:
            answered = baseline.prediction.count(
                np.asarray(predictions).reshape(len(rows), -1)[:, 0]
            )
        with self._lock:
            self.rows += len(rows)
            for i, (counts, missing) in enumerate(counted):
                self._counts[i] += counts
                self._missing[i] += missing
            if answered is not None and self._predicted is not None:
                self._predicted += answered[0]
                self._predicted_missing += answered[1]

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON (see docs/monitoring.md for the format)."""
        with self._lock:
            features = [
                {"name": name, "counts": counts.tolist(), "missing": missing}
                for (name, _), counts, missing in zip(
                    self.baseline.features if self.baseline else (),
                    self._counts,
                    self._missing,
                    strict=True,
                )
            ]
            prediction = (
                {"counts": self._predicted.tolist(), "missing": self._predicted_missing}
                if self._predicted is not None
                else None
            )
            rows = self.rows
        return {
            "instance": self.instance,
            "startedAt": self.started.isoformat().replace("+00:00", "Z"),
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "reason": self.reason,
            "rows": rows,
            "features": features,
            "prediction": prediction,
        }
