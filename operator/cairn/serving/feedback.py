"""Ground truth that arrives after the answer: the server keeps its recent predictions by the
answer's id, for a bounded time and number, and scores the labels sent to
POST /v2/models/{name}/feedback against them.

Counters only grow (like those at /monitoring): matched rows, correct rows (a classifier) or the
sum of absolute and squared errors (a regressor). One bad item never loses the rest of a batch:
each item is matched, unknown (never answered here, or the server restarted), expired (answered
longer ago than the window keeps), a duplicate (its label was already counted) or invalid (a
label that does not fit the answer). Only a body that is not a list of {id, label} objects is
refused whole.
"""

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from typing import Any

OUTCOMES = ("matched", "unknown", "expired", "duplicate", "invalid")
ERRORS_SHOWN = 5  # the first few problems of a batch, said in its answer


@dataclasses.dataclass
class Scores:
    matched_rows: int = 0
    correct_rows: int = 0
    absolute_error: float = 0.0
    squared_error: float = 0.0
    items: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "matchedRows": self.matched_rows,
            "correctRows": self.correct_rows,
            "absoluteError": self.absolute_error,
            "squaredError": self.squared_error,
            "items": dict(self.items),
        }


class FeedbackError(ValueError):
    """A feedback body that is not a list of {id, label} items."""


class PredictionStore:
    """The last `size` answers (at most `ttl_s` old) by id, and the scores of feedback on them."""

    def __init__(
        self,
        size: int,
        ttl_s: float,
        classification: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size, self.ttl_s, self.classification = size, ttl_s, classification
        self._clock = clock
        self._lock = threading.Lock()
        # Tuples of numbers and strings, never lists: the garbage collector stops tracking such
        # tuples, so tens of thousands of kept answers do not make every full collection (and
        # with it every request that triggers one) walk them all.
        self._answers: collections.OrderedDict[str, tuple[float, tuple[Any, ...]]] = (
            collections.OrderedDict()
        )
        # Ids no longer kept, and why (expired, duplicate): as many as the answers.
        self._gone: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.scores = Scores()

    def remember(self, answer_id: str, predictions: list[Any]) -> None:
        now = self._clock()
        with self._lock:
            self._answers[answer_id] = (now, tuple(predictions))
            self._answers.move_to_end(answer_id)
            self._gone.pop(answer_id, None)
            self._expire(now)

    def _expire(self, now: float) -> None:
        while self._answers:
            answer_id, (when, _) = next(iter(self._answers.items()))
            if len(self._answers) <= self.size and now - when <= self.ttl_s:
                break
            del self._answers[answer_id]
            self._forget(answer_id, "expired")

    def _forget(self, answer_id: str, why: str) -> None:
        self._gone[answer_id] = why
        self._gone.move_to_end(answer_id)
        while len(self._gone) > self.size:
            self._gone.popitem(last=False)

    def score(self, body: Any) -> dict[str, Any]:
        """Score a feedback body, `[{"id": ..., "label": ...}, ...]` (`label` a list for an
        answer of several rows); what became of each item, by outcome, and the first errors."""
        if not isinstance(body, list):
            raise FeedbackError('the body must be a JSON list of {"id": ..., "label": ...}')
        for index, item in enumerate(body):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise FeedbackError(f'item [{index}] must be an object with "id", a string')
            if "label" not in item:
                raise FeedbackError(f'item [{index}] ({item["id"]}) has no "label"')
        outcomes = dict.fromkeys(OUTCOMES, 0)
        errors: list[str] = []
        with self._lock:
            self._expire(self._clock())
            for index, item in enumerate(body):
                outcome, error = self._score_one(item)
                outcomes[outcome] += 1
                self.scores.items[outcome] += 1
                if error and len(errors) < ERRORS_SHOWN:
                    errors.append(f"[{index}]: {error}")
        return {**outcomes, "errors": errors}

    def _score_one(self, item: dict[str, Any]) -> tuple[str, str | None]:
        answer_id = item["id"]
        if item["label"] is None:
            return "invalid", f"{answer_id}: the label is null"
        kept = self._answers.get(answer_id)
        if kept is None:
            why = self._gone.get(answer_id)
            if why == "expired":
                return "expired", f"{answer_id}: answered longer ago than this server keeps"
            if why == "duplicate":
                return "duplicate", f"{answer_id}: its label was already counted"
            return "unknown", f"{answer_id}: not an answer of this server (or it restarted)"
        predictions = kept[1]
        labels = item["label"] if isinstance(item["label"], list) else [item["label"]]
        if len(labels) != len(predictions):
            return "invalid", (
                f"{answer_id}: {len(labels)} label(s) for an answer of {len(predictions)} row(s)"
            )
        try:
            scored = [self._compare(p, label) for p, label in zip(predictions, labels, strict=True)]
        except (TypeError, ValueError) as error:
            return "invalid", f"{answer_id}: {error}"
        del self._answers[answer_id]
        self._forget(answer_id, "duplicate")
        scores = self.scores
        scores.matched_rows += len(scored)
        for correct, difference in scored:
            scores.correct_rows += correct
            scores.absolute_error += abs(difference)
            scores.squared_error += difference * difference
        return "matched", None

    def _compare(self, predicted: Any, label: Any) -> tuple[bool, float]:
        if self.classification:
            return _same_class(predicted, label), 0.0
        actual = float(label)
        if not math.isfinite(actual):
            raise ValueError(f"label {label!r} is not a finite number")
        return False, float(predicted) - actual

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self.scores.to_dict(), "kept": len(self._answers)}


def _same_class(predicted: Any, label: Any) -> bool:
    if isinstance(label, bool) or isinstance(predicted, bool):
        return str(predicted).lower() == str(label).lower()
    if isinstance(label, int | float) and isinstance(predicted, int | float):
        return float(predicted) == float(label)
    return str(predicted) == str(label)
