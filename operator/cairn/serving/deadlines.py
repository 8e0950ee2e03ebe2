"""Deadlines for request bodies, kept by one periodic sweep instead of a timer per request.

asyncio.timeout() costs a timer per request (about 5 µs, a twentieth of a cheap model's whole
request); registering a deadline in a dict costs a tenth of that. A sweep every
`resolution` seconds, scheduled only while some request is waiting, cancels the tasks whose
deadline has passed; the waiting code sees `expired()` and answers 408. A deadline is met
within `resolution` seconds.
"""

import asyncio
import time


class BodyTimeout(Exception):
    """The body did not arrive by its deadline."""


class Deadlines:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.resolution = min(1.0, max(0.01, timeout / 4))
        self._waiting: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the sweep's

    def start(self) -> "asyncio.Task[object] | None":
        """The current task is cancelled if stop() has not been called within `timeout`
        seconds; its CancelledError then goes to raise_if_expired()."""
        if not self.timeout:
            return None
        task = asyncio.current_task()
        assert task is not None
        self._waiting[task] = time.monotonic() + self.timeout
        loop = task.get_loop()
        if self._sweep is None or self._loop is not loop:  # (tests run one loop after another)
            self._loop = loop
            self._sweep = loop.call_later(self.resolution, self._run)
        return task

    def stop(self, task: "asyncio.Task[object] | None") -> None:
        if task is not None:
            self._waiting.pop(task, None)

    def raise_if_expired(self, task: "asyncio.Task[object] | None") -> None:
        """For a task cancelled while waiting: BodyTimeout if the cancellation was its
        deadline's (nothing, if someone else cancelled it)."""
        if task is not None and task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            raise BodyTimeout(f"the request body did not arrive within {self.timeout:g}s")

    def _run(self) -> None:
        now = time.monotonic()
        for task, deadline in list(self._waiting.items()):
            if deadline <= now:
                del self._waiting[task]
                self._expired.add(task)
                task.cancel()
        loop = asyncio.get_running_loop()
        self._sweep = loop.call_later(self.resolution, self._run) if self._waiting else None
