"""The feedback store and the drift counts off the request path: answers queued and folded in
bulk, categorical values counted per distinct value, give what remembering and counting each
one at once gave."""

import collections
import random
import re
from typing import Any

import numpy as np
import pytest

from cairn.monitoring.profile import Histogram, _category
from cairn.serving import feedback
from cairn.serving.app import new_answer_id
from cairn.serving.feedback import FOLD_ANSWERS, PredictionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ReferenceStore:
    """The store as it was before answers were queued: each answer folded in at once, one
    ordered dict of kept answers and one of forgotten ids."""

    def __init__(self, size: int, ttl_s: float, clock: Clock) -> None:
        self.size, self.ttl_s, self.clock = size, ttl_s, clock
        self.answers: collections.OrderedDict[str, tuple[float, list[Any]]] = (
            collections.OrderedDict()
        )
        self.gone: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.matched = 0

    def remember(self, answer_id: str, predictions: list[Any]) -> None:
        now = self.clock()
        self.answers[answer_id] = (now, predictions)
        self.answers.move_to_end(answer_id)
        self.gone.pop(answer_id, None)
        self.expire(now)

    def expire(self, now: float) -> None:
        while self.answers:
            answer_id, (when, _) = next(iter(self.answers.items()))
            if len(self.answers) <= self.size and now - when <= self.ttl_s:
                break
            del self.answers[answer_id]
            self.forget(answer_id, "expired")

    def forget(self, answer_id: str, why: str) -> None:
        self.gone[answer_id] = why
        self.gone.move_to_end(answer_id)
        while len(self.gone) > self.size:
            self.gone.popitem(last=False)

    def score(self, answer_id: str, label: Any) -> str:
        self.expire(self.clock())
        kept = self.answers.get(answer_id)
        if kept is None:
            return self.gone.get(answer_id, "unknown")
        if len(kept[1]) != (len(label) if isinstance(label, list) else 1):
            return "invalid"
        del self.answers[answer_id]
        self.forget(answer_id, "duplicate")
        self.matched += len(kept[1])
        return "matched"


def _replay(size: int, ttl_s: float, seed: int, steps: int) -> None:
    """Random answers, pauses, feedback and reads on both stores: the same outcome each time."""
    rng = random.Random(seed)
    clock = Clock()
    store = PredictionStore(size, ttl_s, classification=True, clock=clock)
    reference = ReferenceStore(size, ttl_s, clock)
    answered: list[str] = []
    for step in range(steps):
        action = rng.random()
        if action < 0.7:
            answer_id = f"a{step}"
            rows = rng.choice((1, 1, 1, 3))
            labels = np.array([rng.randrange(3) for _ in range(rows)])
            store.remember(answer_id, labels)
            reference.remember(answer_id, labels.tolist())
            answered.append(answer_id)
        elif action < 0.8:
            clock.now += rng.choice((0.5, ttl_s / 3, ttl_s))
        elif action < 0.97:
            answer_id = rng.choice(answered) if answered and rng.random() < 0.9 else "never"
            label = rng.choice((0, [0, 1, 2]))
            outcome = store.score([{"id": answer_id, "label": label}])
            expected = reference.score(answer_id, label)
            assert outcome[expected] == 1, (step, answer_id, outcome, expected)
        else:
            snapshot = store.snapshot()
            assert snapshot["kept"] == len(reference.answers), step
            assert snapshot["matchedRows"] == reference.matched, step


@pytest.mark.parametrize(
    ("size", "ttl_s", "seed"),
    [(1, 60.0, 0), (3, 60.0, 1), (50, 60.0, 2), (FOLD_ANSWERS + 7, 3600.0, 3), (5000, 60.0, 4)],
)
def test_queued_answers_give_what_folding_each_at_once_gave(
    size: int, ttl_s: float, seed: int
) -> None:
    _replay(size, ttl_s, seed, steps=4000)


def test_a_small_group_of_forgotten_ids_keeps_only_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feedback, "FOLD_ANSWERS", 4)
    monkeypatch.setattr(feedback, "GONE_GROUP", 5)  # many groups, trimmed from the oldest
    _replay(size=7, ttl_s=60.0, seed=5, steps=3000)


def test_answers_are_queued_until_a_fold_and_every_read_sees_them_all() -> None:
    store = PredictionStore(100, 60.0, classification=True)
    for i in range(FOLD_ANSWERS - 1):
        store.remember(f"q{i}", np.array([1]))
    assert store._answers == {}  # still queued: nothing done on the request path
    assert store.snapshot()["kept"] == 100  # a read folds them in first (the last 100 kept)
    assert store.score([{"id": "q0", "label": 1}])["matched"] == 0  # pushed out by the size
    assert store.score([{"id": f"q{FOLD_ANSWERS - 2}", "label": 1}])["matched"] == 1


def test_an_id_answered_again_is_scored_against_its_newest_answer() -> None:
    clock = Clock()
    store = PredictionStore(2, 60.0, classification=True, clock=clock)
    store.remember("same", np.array([0]))
    store.remember("other", np.array([1]))
    store.remember("same", np.array([2]))  # the newest again: "other" is now the oldest
    store.remember("third", np.array([1]))
    outcome = store.score([{"id": "other", "label": 1}, {"id": "same", "label": 2}])
    assert (outcome["expired"], outcome["matched"]) == (1, 1)
    assert store.snapshot()["correctRows"] == 1


def test_memory_stays_bounded_when_every_answer_gets_its_label() -> None:
    store = PredictionStore(50, 3600.0, classification=True)
    for i in range(20 * FOLD_ANSWERS):
        store.remember(f"m{i}", np.array([1]))
        if i % 10 == 9:
            store.score([{"id": f"m{j}", "label": 1} for j in range(i - 9, i + 1)])
    assert len(store._order) <= 2 * FOLD_ANSWERS + FOLD_ANSWERS
    assert sum(len(group) for group in store._gone) <= 50
    assert store.snapshot()["matchedRows"] == 20 * FOLD_ANSWERS


def test_several_outputs_are_scored_on_their_first_column() -> None:
    store = PredictionStore(10, 60.0, classification=False)
    store.remember("r", np.array([[1.5, 9.0], [2.0, 9.0]]))
    assert store.score([{"id": "r", "label": [1.0, 2.0]}])["matched"] == 1
    assert store.snapshot()["absoluteError"] == pytest.approx(0.5)


def test_answer_ids_are_32_random_hex_digits() -> None:
    ids = {new_answer_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", answer_id) for answer_id in ids)


def _count_each(histogram: Histogram, column: Any) -> tuple[list[int], int]:
    """Counting as it was done before: each row's text looked up on its own."""
    counts = [0] * histogram.bins
    missing = 0
    for value in np.asarray(column).reshape(-1).tolist():
        text = _category(value)
        if text is None:
            missing += 1
        else:
            position = histogram.values.index(text) if text in histogram.values else -1
            counts[position] += 1
    return counts, missing


@pytest.mark.parametrize(
    ("values", "column"),
    [
        (("0", "1", "2"), np.array([0, 1, 2, 2, 7, 1, 0, 2], dtype=np.int64)),
        (("0", "1", "2"), np.array([[0], [2], [2]], dtype=np.int32)),
        (("True", "False"), np.array([True, False, True, True])),
        (("a", "b"), np.array(["a", "b", "c", "a", "a"])),
        (("a", "b"), np.array([b"a", b"z", b"b"])),
        (("a", "b"), np.array(["a", None, "b", float("nan"), 3, b"a"], dtype=object)),
        (("1.0", "-0.0", "0.0"), np.array([1.0, -0.0, 0.0, np.nan, 2.5, 1.0])),
        (("x",), np.array([], dtype="U1")),
    ],
)
def test_categorical_values_are_counted_as_each_row_on_its_own(
    values: tuple[str, ...], column: Any
) -> None:
    histogram = Histogram("categorical", (0,) * (len(values) + 1), values=values)
    counts, missing = histogram.count(column)
    assert (counts.tolist(), missing) == _count_each(histogram, column)
    assert counts.dtype == np.int64
