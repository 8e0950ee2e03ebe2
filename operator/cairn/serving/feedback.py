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

import numpy as np
from numpy.typing import NDArray

from cairn.serving.feedback_keys import answer_key, answer_keys
from cairn.serving.feedback_log import AnswerLog, ForgottenIds

OUTCOMES = ("matched", "unknown", "expired", "duplicate", "invalid")
ERRORS_SHOWN = 5  # the first few problems of a batch, said in its answer
FOLD_ANSWERS = 1024  # answers queued by remember() before they are folded into the store
EXPIRED, DUPLICATE = 1, 2  # why an id was forgotten
_WHY = {EXPIRED: "expired", DUPLICATE: "duplicate"}

_Queued = tuple[str, float, NDArray[Any]]  # an answer's id, when it was answered, its labels


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
    """The last `size` answers (at most `ttl_s` old) by id, and the scores of feedback on them.

    `remember` is on every inference's path, so it only queues the answer; the queue is folded
    into the store in bulk every FOLD_ANSWERS answers and before any read, with the same result
    as remembering each answer at once (each keeps the time it was answered). Folded answers
    live in numpy arrays (feedback_log): about 130 bytes an answer at the bound, kept and
    forgotten ids together, and no object for the garbage collector to walk."""

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
        # Answers not yet folded in (a deque: appends and pops are atomic, without the lock).
        self._pending: collections.deque[_Queued] = collections.deque()
        self._kept = AnswerLog(size)
        self._forgotten = ForgottenIds(size)  # as many ids as answers kept
        self.scores = Scores()

    def remember(self, answer_id: str, labels: NDArray[Any]) -> None:
        """Keep an answer's predicted labels or values (a row each, or rows of several columns
        whose first counts): copied into the store's arrays when folded in, Python values only
        if feedback comes."""
        self._pending.append((answer_id, self._clock(), labels))
        if len(self._pending) >= FOLD_ANSWERS:
            with self._lock:
                self._fold()

    def _fold(self) -> None:
        """Fold the queued answers in (under the lock), then expire as of the newest."""
        pending = self._pending
        queued = [pending.popleft() for _ in range(len(pending))]
        if not queued:
            return
        ids, times, labels = zip(*queued, strict=True)
        columns = [answer if answer.ndim == 1 else first_column(answer) for answer in labels]
        self._kept.add(answer_keys(ids), np.array(times, np.float64), columns)
        self._expire(times[-1])

    def _expire(self, now: float) -> None:
        """Forget the oldest answers beyond `size`, and those older than `ttl_s`."""
        slots = self._kept.expire(self.size, self.ttl_s, now)
        if len(slots):
            self._forgotten.forget(self._kept.keys[slots], EXPIRED)

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
            self._fold()
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
        key = answer_key(answer_id)
        slot = self._kept.find(key)
        if slot < 0:
            why = _WHY.get(self._forgotten.why(key) or 0)
            if why == "expired":
                return "expired", f"{answer_id}: answered longer ago than this server keeps"
            if why == "duplicate":
                return "duplicate", f"{answer_id}: its label was already counted"
            return "unknown", f"{answer_id}: not an answer of this server (or it restarted)"
        predictions = self._kept.rows(slot)
        labels = item["label"] if isinstance(item["label"], list) else [item["label"]]
        if len(labels) != len(predictions):
            return "invalid", (
                f"{answer_id}: {len(labels)} label(s) for an answer of {len(predictions)} row(s)"
            )
        try:
            scored = [self._compare(p, label) for p, label in zip(predictions, labels, strict=True)]
        except (TypeError, ValueError) as error:
            return "invalid", f"{answer_id}: {error}"
        self._kept.drop(slot)
        self._forgotten.forget_one(key, DUPLICATE)
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
            self._fold()
            return {**self.scores.to_dict(), "kept": self._kept.alive}


def row_values(labels: NDArray[Any]) -> list[Any]:
    """One label or value per row, as Python values (the first column of several)."""
    values: list[Any] = first_column(labels).tolist()
    return values


def first_column(labels: NDArray[Any]) -> NDArray[Any]:
    """One label or value per row (the first column of several; None for a row of none)."""
    if labels.ndim == 1:
        return labels
    if labels.ndim == 0:
        return labels.reshape(1)
    if labels.size == 0:
        return np.full(len(labels), None, dtype=object)
    column: NDArray[Any] = labels.reshape(len(labels), -1)[:, 0]
    return column


def _same_class(predicted: Any, label: Any) -> bool:
    if isinstance(label, bool) or isinstance(predicted, bool):
        return str(predicted).lower() == str(label).lower()
    if isinstance(label, int | float) and isinstance(predicted, int | float):
        return float(predicted) == float(label)
    return str(predicted) == str(label)
