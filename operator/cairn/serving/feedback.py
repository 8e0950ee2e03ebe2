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
import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from numpy.typing import NDArray

OUTCOMES = ("matched", "unknown", "expired", "duplicate", "invalid")
ERRORS_SHOWN = 5  # the first few problems of a batch, said in its answer
FOLD_ANSWERS = 256  # answers queued by remember() before they are folded into the store
GONE_GROUP = 1024  # ids per group of forgotten ids (a lookup reads size / GONE_GROUP groups)

_Answer = tuple[float, NDArray[Any]]  # when it was answered, its predictions
_Kept = tuple[str, _Answer]  # and its id


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
    as remembering each answer at once (each keeps the time it was answered)."""

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
        self._pending: collections.deque[_Kept] = collections.deque()
        # Tuples of numbers, strings and numpy arrays, never lists: the garbage collector stops
        # tracking such tuples, so tens of thousands of kept answers do not make every full
        # collection (and with it every request that triggers one) walk them all.
        self._answers: dict[str, _Answer] = {}
        # Every answer folded in, oldest first; one whose id was answered again or scored since
        # is stale (no longer what _answers holds) and skipped when it comes first.
        self._order: collections.deque[_Kept] = collections.deque()
        # Ids no longer kept, and why (expired, duplicate): as many as the answers, in groups,
        # newest last. Groups rather than one ordered dict: forgetting thousands of ids a second
        # then costs a dict update per fold. (An id forgotten twice counts twice.)
        self._gone: collections.deque[dict[str, str]] = collections.deque()
        self._gone_ids = 0
        self.scores = Scores()

    def remember(self, answer_id: str, labels: NDArray[Any]) -> None:
        """Keep an answer's predicted labels or values (a row each, or rows of several columns
        whose first counts), as they are: they become Python values only if feedback comes."""
        self._pending.append((answer_id, (self._clock(), labels)))
        if len(self._pending) >= FOLD_ANSWERS:
            with self._lock:
                self._fold()

    def _fold(self) -> None:
        """Fold the queued answers in (under the lock), then expire as of the newest."""
        pending = self._pending
        kept = [pending.popleft() for _ in range(len(pending))]
        if not kept:
            return
        self._answers.update(kept)
        self._order.extend(kept)
        self._expire(kept[-1][1][0])
        if len(self._order) > 2 * max(self.size, FOLD_ANSWERS):  # mostly stale: compact
            answers = self._answers
            self._order = collections.deque(k for k in self._order if answers.get(k[0]) is k[1])

    def _expire(self, now: float) -> None:
        """Forget the oldest answers beyond `size`, and those older than `ttl_s`."""
        answers, order = self._answers, self._order
        expired: list[str] = []
        while (excess := len(answers) - self.size) > 0 and order:
            # Whole runs of the oldest at once: at full traffic every fold pushes out as many.
            oldest = [order.popleft() for _ in range(min(excess, len(order)))]
            run = [answer_id for answer_id, answer in oldest if answers.get(answer_id) is answer]
            for answer_id in run:
                del answers[answer_id]
            expired += run
        while order:
            answer_id, answer = order[0]
            if answers.get(answer_id) is answer:
                if now - answer[0] <= self.ttl_s:
                    break
                del answers[answer_id]
                expired.append(answer_id)
            order.popleft()
        if expired:
            self._forget(expired, "expired")

    def _forget(self, answer_ids: list[str], why: str) -> None:
        gone = self._gone
        if gone and len(gone[-1]) + len(answer_ids) <= GONE_GROUP:
            group = gone[-1]
            before = len(group)
            group.update(dict.fromkeys(answer_ids, why))
            self._gone_ids += len(group) - before
        else:
            gone.append(dict.fromkeys(answer_ids, why))
            self._gone_ids += len(gone[-1])
        excess = self._gone_ids - self.size
        while excess > 0:  # the oldest ids beyond `size` go, a whole group when they can
            oldest = gone[0]
            if len(oldest) <= excess:
                excess -= len(gone.popleft())
            else:
                for answer_id in list(itertools.islice(oldest, excess)):
                    del oldest[answer_id]
                excess = 0
        self._gone_ids = min(self._gone_ids, self.size)

    def _why_gone(self, answer_id: str) -> str | None:
        for group in reversed(self._gone):  # the newest says why
            why = group.get(answer_id)
            if why is not None:
                return why
        return None

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
        kept = self._answers.get(answer_id)
        if kept is None:
            why = self._why_gone(answer_id)
            if why == "expired":
                return "expired", f"{answer_id}: answered longer ago than this server keeps"
            if why == "duplicate":
                return "duplicate", f"{answer_id}: its label was already counted"
            return "unknown", f"{answer_id}: not an answer of this server (or it restarted)"
        predictions = row_values(kept[1])
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
        self._forget([answer_id], "duplicate")
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
            return {**self.scores.to_dict(), "kept": len(self._answers)}


def row_values(labels: NDArray[Any]) -> list[Any]:
    """One label or value per row, as Python values (the first column of several)."""
    values: list[Any] = (
        labels if labels.ndim == 1 else labels.reshape(len(labels), -1)[:, 0]
    ).tolist()
    return values


def _same_class(predicted: Any, label: Any) -> bool:
    if isinstance(label, bool) or isinstance(predicted, bool):
        return str(predicted).lower() == str(label).lower()
    if isinstance(label, int | float) and isinstance(predicted, int | float):
        return float(predicted) == float(label)
    return str(predicted) == str(label)
