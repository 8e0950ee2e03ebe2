"""Waiting for a state of the cluster, with a deadline and a message saying what was awaited."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    message: str,
    describe: Callable[[], str] | None = None,
    interval: float = 0.5,
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    On timeout, raise TimeoutError naming `message` and, if given, what `describe` says about the
    current state, since "timed out" alone never explains why. Exceptions from `predicate`
    propagate at once: a predicate fails fast when it sees a state that can no longer change.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            state = f"; {describe()}" if describe else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {message}{state}")
        time.sleep(interval)
