"""The feedback store and the drift counts off the request path: answers queued and folded in
bulk into numpy arrays, categorical values counted per distinct value, give what remembering
(in dicts of Python objects) and counting each one at once gave."""

import collections
import random
import re
import tracemalloc
from typing import Any

import numpy as np
import pytest

from cairn.monitoring.profile import Histogram, _category
from cairn.serving import feedback, feedback_keys, feedback_log
from cairn.serving.app import new_answer_id
from cairn.serving.feedback import FOLD_ANSWERS, PredictionStore, row_values
from cairn.serving.feedback_keys import SlotTable, answer_key, answer_keys


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


class FoldingReference(ReferenceStore):
    """The store as it was with ids answered again: answers queued and applied together (an
    older answer of an id answered again in the same fold is replaced, not forgotten), an id
    answered again stays forgotten (its live answer comes first), and one forgotten twice
    counts twice, the newest saying why."""

    def __init__(self, size: int, ttl_s: float, clock: Clock) -> None:
        super().__init__(size, ttl_s, clock)
        self.forgotten: collections.deque[tuple[str, str]] = collections.deque(maxlen=size)
        self.pending: list[tuple[str, float, list[Any]]] = []

    def remember(self, answer_id: str, predictions: list[Any]) -> None:
        self.pending.append((answer_id, self.clock(), predictions))
        if len(self.pending) >= feedback.FOLD_ANSWERS:
            self.flush()

    def flush(self) -> None:
        for answer_id, now, predictions in self.pending:
            self.answers[answer_id] = (now, predictions)
            self.answers.move_to_end(answer_id)
        if self.pending:
            self.expire(self.pending[-1][1])
        self.pending = []

    def score(self, answer_id: str, label: Any) -> str:
        self.flush()
        return super().score(answer_id, label)

    def forget(self, answer_id: str, why: str) -> None:
        self.forgotten.append((answer_id, why))
        self.gone = collections.OrderedDict(self.forgotten)  # the newest of each id wins


def _replay(
    size: int,
    ttl_s: float,
    seed: int,
    steps: int,
    *,
    again: float = 0.0,
    ids: str = "text",
) -> None:
    """Random answers, pauses, feedback and reads on both stores: the same outcome each time.
    `again`: the share of answers whose id was answered before; `ids`: text, hex or both."""
    rng = random.Random(seed)
    clock = Clock()
    store = PredictionStore(size, ttl_s, classification=True, clock=clock)
    reference = (FoldingReference if again else ReferenceStore)(size, ttl_s, clock)
    answered: list[str] = []
    for step in range(steps):
        action = rng.random()
        if action < 0.7:
            if answered and rng.random() < again:
                answer_id = rng.choice(answered[-3 * size :])
            elif ids == "hex" or (ids == "both" and rng.random() < 0.5):
                answer_id = f"{rng.getrandbits(128):032x}"
            else:
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
            if isinstance(reference, FoldingReference):
                reference.flush()
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


@pytest.mark.parametrize(
    ("size", "seed", "ids"), [(1, 10, "hex"), (7, 11, "both"), (50, 12, "text"), (300, 13, "both")]
)
def test_ids_answered_again_give_what_folding_each_at_once_gave(
    size: int, seed: int, ids: str
) -> None:
    _replay(size, 60.0, seed, steps=4000, again=0.2, ids=ids)


@pytest.mark.parametrize("again", [0.0, 0.3])
def test_tiny_arrays_squeezed_pushed_out_and_wrapped_often_give_the_same(
    monkeypatch: pytest.MonkeyPatch, again: float
) -> None:
    monkeypatch.setattr(feedback, "FOLD_ANSWERS", 4)
    monkeypatch.setattr(feedback_keys, "MIN_BUCKET_BITS", 1)
    monkeypatch.setattr(feedback_keys, "MAX_BUCKET_BITS", 1)  # 2 buckets: most keys pushed out
    monkeypatch.setattr(feedback_log, "SPARE_SLOTS", 1)  # the log squeezes every few answers
    monkeypatch.setattr(feedback_log, "SCAN", 2)  # expiry looks a few slots at a time
    _replay(size=7, ttl_s=60.0, seed=5, steps=3000, again=again, ids="both")


def test_answers_are_queued_until_a_fold_and_every_read_sees_them_all() -> None:
    store = PredictionStore(100, 60.0, classification=True)
    for i in range(FOLD_ANSWERS - 1):
        store.remember(f"q{i}", np.array([1]))
    assert store._kept.alive == 0  # still queued: nothing done on the request path
    assert store.snapshot()["kept"] == 100  # a read folds them in first (the last 100 kept)
    assert store.score([{"id": "q0", "label": 1}])["matched"] == 0  # pushed out by the size
    assert store.score([{"id": f"q{FOLD_ANSWERS - 2}", "label": 1}])["matched"] == 1


def test_an_id_answered_again_in_one_fold_is_kept_once_and_never_forgotten() -> None:
    clock = Clock()
    store = PredictionStore(2, 60.0, classification=True, clock=clock)
    store.remember("old", np.array([0]))
    store.snapshot()
    clock.now += 61  # "old" is past its time, but answered again before the next fold
    for label in (1, 2, 3):
        store.remember("twice", np.array([label]))
    store.remember("old", np.array([4]))
    assert store.snapshot()["kept"] == 2
    outcome = store.score([{"id": "twice", "label": 3}, {"id": "old", "label": 4}])
    assert outcome["matched"] == 2
    assert store.snapshot()["correctRows"] == 2


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
    assert store.snapshot()["matchedRows"] == 20 * FOLD_ANSWERS
    capacity = 50 + feedback_log.SPARE_SLOTS
    assert len(store._kept._alive) == capacity  # squeezed in place, never grown
    assert len(store._kept._values) <= 4 * capacity
    assert len(store._kept._table.pushed) <= capacity
    assert len(store._forgotten._table.pushed) <= 3 * 50 + FOLD_ANSWERS


def test_memory_stays_the_same_when_answers_only_expire() -> None:
    """The usual traffic: no feedback, answers pushed out by newer ones. Once the store is full,
    150,000 more answers take no more memory (the table's dict of positions pushed out of their
    bucket once kept them all: 3 MB more here, and growing)."""
    store = PredictionStore(1000, 3600.0, classification=True)
    label = np.array([1])

    def answer(count: int) -> None:
        for _ in range(count):
            store.remember(new_answer_id(), label)

    answer(50_000)
    tracemalloc.start()
    try:
        answer(150_000)
        assert store.snapshot()["kept"] == 1000
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown < 256 * 1024


def test_an_evicted_id_says_expired_until_the_ring_forgets_it_then_unknown() -> None:
    clock = Clock()
    store = PredictionStore(3, 60.0, classification=True, clock=clock)
    for i in range(6):  # 0, 1, 2 pushed out by 3, 4, 5
        store.remember(f"e{i}", np.array([i]))
    assert [store.score([{"id": f"e{i}", "label": i}])["expired"] for i in range(3)] == [1] * 3
    assert store.score([{"id": "e3", "label": 3}])["matched"] == 1  # forgotten: a duplicate
    # The ring holds 3 ids: e3 (duplicate) pushed e0 out; e1 and e2 are still there.
    outcome = store.score([{"id": f"e{i}", "label": i} for i in range(4)])
    assert (outcome["unknown"], outcome["expired"], outcome["duplicate"]) == (1, 2, 1)
    clock.now += 61  # e4, e5 expire: the ring is e3, e4, e5 now
    outcome = store.score([{"id": f"e{i}", "label": i} for i in range(6)])
    assert (outcome["unknown"], outcome["duplicate"], outcome["expired"]) == (3, 1, 2)
    store.remember("e0", np.array([7]))  # the same id answered again is kept again
    assert store.score([{"id": "e0", "label": 7}])["matched"] == 1


@pytest.mark.parametrize(
    "answers",
    [
        [np.array([0, 2], dtype=np.int32), np.array([2**40], dtype=np.int64)],  # widened
        [np.array(["setosa"]), np.array(["versicolor", "a"])],  # wider text: still text
        [np.array([True, False]), np.array([b"raw"])],  # two kinds: Python objects
        [np.array([0.1], dtype=np.float32), np.array([[1.5, 9.0], [2.5, 9.0]])],
        [np.array(["x", 3, None], dtype=object), np.array([1, 2])],
        [np.array(7), np.empty((2, 0)), np.array([], dtype=np.int64)],  # no rows, no values
        [np.array([[1, 9], [2, 9]]), np.array([[3, 9]]), np.array([], dtype=np.int64)],
    ],
)
def test_every_kind_of_label_comes_back_as_the_same_python_values(
    answers: list[Any],
) -> None:
    store = PredictionStore(100, 60.0, classification=True)
    for i, labels in enumerate(answers):
        store.remember(f"k{i}", labels)
    store.snapshot()
    for i, labels in enumerate(answers):
        kept = store._kept.rows(store._kept.find(answer_key(f"k{i}")))
        expected = row_values(labels)
        assert kept == expected and list(map(type, kept)) == list(map(type, expected)), i


def test_ids_are_told_apart_exactly_and_in_bulk_as_one_by_one() -> None:
    hex_id = new_answer_id()
    ids = [hex_id, hex_id.upper(), f" {hex_id[1:]}", hex_id[:31] + "g", "x", "", "\ud800", "é"]
    keys = answer_keys(ids)
    assert len({tuple(key) for key in keys.tolist()}) == len(ids)
    assert [tuple(key) for key in keys.tolist()] == [answer_key(i) for i in ids]
    assert answer_keys([hex_id]).tobytes() == bytes.fromhex(hex_id)  # the server's: as they are
    fresh = [new_answer_id() for _ in range(300)]
    assert [tuple(key) for key in answer_keys(fresh).tolist()] == [answer_key(i) for i in fresh]


def test_the_table_gives_a_key_s_positions_pushed_out_of_their_bucket_too() -> None:
    table = SlotTable(4)  # 256 buckets
    shift = 64 - 8
    same_bucket = np.array([3 << shift, (3 << shift) + 1, (3 << shift) + 2], np.uint64)
    held, lost, pushed = table.put(same_bucket[:2], np.array([0, 1], np.int32))  # 1 wins
    assert (held.tolist(), lost.tolist(), pushed.tolist()) == ([-1, -1], [0], [False, False])
    table.keep(same_bucket[:1], lost)
    held, lost, pushed = table.put(same_bucket[2:], np.array([2], np.int32))  # 2 takes it
    assert (held.tolist(), lost.tolist(), pushed.tolist()) == ([1], [], [True])
    table.keep(same_bucket[1:2], held)
    assert [table.candidates(int(mix)) for mix in same_bucket] == [[2, 0], [2, 1], [2]]
    assert table.candidates(5 << shift) == []
    table.clear()
    assert table.candidates(int(same_bucket[0])) == []


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
