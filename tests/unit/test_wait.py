import itertools

import pytest

from tests.support.wait import wait_for


def test_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, "", "ready"])

    assert wait_for(lambda: next(values), timeout=5, message="x", interval=0) == "ready"


def test_timeout_names_what_was_awaited_and_the_state() -> None:
    polls = itertools.count()

    with pytest.raises(TimeoutError) as error:
        wait_for(
            lambda: next(polls) < 0,
            timeout=0.05,
            message="the pod to start",
            describe=lambda: "pod is Pending",
            interval=0.01,
        )

    assert str(error.value) == (
        "timed out after 0.05s waiting for the pod to start; pod is Pending"
    )
    assert next(polls) > 1  # it kept polling until the deadline


def test_an_error_from_the_predicate_stops_waiting_at_once() -> None:
    def broken() -> bool:
        raise RuntimeError("pod failed")

    with pytest.raises(RuntimeError, match="pod failed"):
        wait_for(broken, timeout=60, message="x")
