"""Which objects the periodic resync visits, and when."""

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
