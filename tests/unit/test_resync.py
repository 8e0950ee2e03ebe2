"""Which objects the periodic resync visits, and when."""

import cairn.controllers  # noqa: F401  (registers the controllers' resyncs)
from cairn.controllers import resync
from cairn.controllers.resync import due


def test_new_keys_wait_one_interval_then_come_due() -> None:
    last: dict[tuple[str, str], float] = {}
    intervals = {("ns", "a"): 10.0, ("ns", "b"): 30.0}
    assert due(intervals, last, now=100.0) == []
    assert due(intervals, last, now=109.0) == []
    assert due(intervals, last, now=110.0) == [("ns", "a")]
    assert due(intervals, last, now=130.0) == [("ns", "a"), ("ns", "b")]


def test_keys_leaving_the_index_are_forgotten() -> None:
    last: dict[tuple[str, str], float] = {}
    due({("ns", "a"): 10.0}, last, now=0.0)
    assert due({}, last, now=20.0) == []
    assert last == {}


def test_a_tick_a_little_early_does_not_skip_a_one_second_interval() -> None:
    last: dict[tuple[str, str], float] = {}
    due({("ns", "a"): 1.0}, last, now=0.0)
    assert due({("ns", "a"): 1.0}, last, now=0.995) == [("ns", "a")]
    assert due({("ns", "a"): 1.0}, last, now=1.5) == []  # half a second later: not yet


def test_the_next_tick_is_just_after_a_whole_second() -> None:
    assert abs(resync._until_next_tick(100.25) - 0.76) < 1e-9
    assert abs(resync._until_next_tick(100.999) - 0.011) < 1e-9


def test_intervals_are_the_index_values_or_one_for_every_key() -> None:
    # A kopf index: each key's store holds one value per object under the key.
    index = {("ns", "a"): [10.0, 2.0], ("ns", "b"): [{"spec": {}}], ("ns", "gone"): []}
    assert resync.intervals({k: v for k, v in index.items() if k != ("ns", "b")}) == {
        ("ns", "a"): 2.0  # the least of its values
    }
    assert resync.intervals(index, every=30.0) == {("ns", "a"): 30.0, ("ns", "b"): 30.0}


def test_versions_and_models_are_revisited_from_the_caches_by_name() -> None:
    by_index = {r.index: r.every for r in resync.RESYNCS}
    assert by_index["cached_versions"] == by_index["cached_models"] == 30
