"""Adaptive batching: concurrent requests share one model call, a lone request never waits.

The policy is work-conserving. When the model is idle, a request is dispatched at once, together
with whatever else is already queued. While a call runs, requests that arrive queue up, and the
next call takes them all (up to max_batch_size requests). The batcher waits on purpose only when
requests are known to be on their way — their bodies are being received or decoded — and then
at most max_wait after the oldest queued request arrived. So under load the batch size follows
the load, and at one connection there is no batching tax at all.

Results are identical to unbatched prediction: rows are concatenated in order and each request
gets its own rows back. When a batch's call fails, each of its requests is run alone, so one
request's bad input fails that request only.

A model call runs in a worker thread, which leaves the event loop free to receive the next
requests while the model computes; once calls are measured to be cheaper than a thread hop
(INLINE_BELOW seconds, e.g. ONNX Runtime on small models) they run on the event loop itself.

Such a cheap model is called by the request that finds it idle (the leader) rather than by a
task of the batcher's: the leader yields to the event loop once, so that the requests already
scheduled on it queue up behind it, then runs the batch and hands each its rows. A task per
batch and a future awaited by every request cost more than a cheap model's call; the batches
are the same, since a task started by the first request would also run after those requests.
"""

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

Results = dict[str, NDArray[Any]]
PredictFn = Callable[[NDArray[Any], Iterable[str]], Results]
BatchHook = Callable[[int, NDArray[Any], Results, float], None]

# Model calls measured below this (an exponential average) run inline on the event loop.
INLINE_BELOW = 0.0003
_EWMA = 0.2
# Of the calls run inline, one in this many is timed: the thread's CPU clock is a system call,
# a few percent of a cheap model's request (calls on the worker thread are all timed).
TIME_INLINE_EVERY = 8


class ModelError(Exception):
    """The model refused a request's rows (e.g. values it cannot handle)."""


class _Item:
    __slots__ = ("enqueued", "future", "outputs", "rows")

    def __init__(
        self, rows: NDArray[Any], outputs: tuple[str, ...], future: "asyncio.Future[Results]"
    ) -> None:
        self.rows = rows
        self.outputs = outputs
        self.future = future
        self.enqueued = time.monotonic()


class Batcher:
    def __init__(
        self,
        predict: PredictFn,
        *,
        enabled: bool = True,
        max_batch_size: int = 32,
        max_wait: float = 0.005,
        on_batch: BatchHook | None = None,
        inline_below: float = INLINE_BELOW,
        single_threaded: bool = False,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size if enabled else 1
        self.max_wait = max_wait if enabled else 0.0
        self._on_batch = on_batch
        self._inline_below = inline_below
        # How a model call's cost is measured: the CPU time of the thread that runs it when the
        # model computes on that thread alone (it then excludes waits for the GIL, which on a
        # busy loop, or beside gRPC's poller thread, last up to the 5 ms switch interval and
        # would keep a cheap model off the event loop for good); wall time otherwise, since a
        # model computing on threads of its own would look cheaper than it is.
        self._clock = time.thread_time if single_threaded else time.perf_counter
        self._queue: deque[_Item] = deque()
        self._arriving = 0
        self._running = False
        self._joined: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None  # the running drain (kept referenced)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cairn-model")
        self._cost: float | None = None  # seconds per model call, averaged
        self._inline_calls = 0

    # -- requests on their way: counted so that a batch may wait for them -----------------
    def arriving(self) -> None:
        self._arriving += 1

    def arrived(self) -> None:
        self._arriving -= 1

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def inline(self) -> bool:
        """Model calls are measured to be cheap enough to run on the event loop."""
        return self._cost is not None and self._cost < self._inline_below

    async def predict(self, rows: NDArray[Any], outputs: tuple[str, ...]) -> Results:
        """The outputs for `rows`, computed with whichever requests share the model call."""
        loop = asyncio.get_running_loop()
        item = _Item(rows, outputs, loop.create_future())
        self._queue.append(item)
        if self._joined is not None:
            self._joined.set()
        if not self._running:
            self._running = True
            if self.inline:
                return await self._lead(item, loop)
            self._task = loop.create_task(self._drain())
        return await item.future

    async def _lead(self, item: _Item, loop: asyncio.AbstractEventLoop) -> Results:
        """The first batch, run by its first request (`item`, first in the queue): a cheap
        model's call costs less than a task of its own and a future to wake each request."""
        try:
            if self.max_batch_size > 1:
                await asyncio.sleep(0)  # the requests scheduled on the loop now join
                if self._arriving > 0 and self.max_wait > 0:
                    await self._wait_for_company()
        except BaseException:  # cancelled while waiting: the others are served without it
            item.future.cancel()
            self._task = loop.create_task(self._drain())
            raise
        if not self.inline:  # (no longer cheap: measured meanwhile on the worker thread)
            self._task = loop.create_task(self._drain())
            return await item.future
        batch = [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]
        # Inline, the batch runs without ever suspending: nothing can cancel it half done.
        try:
            await self._run(batch, inline=True)
        except Exception as error:  # a bug must fail its requests, never hang them
            for queued in batch:
                _fail(queued, error)
        if self._queue:  # more than max_batch_size were waiting
            self._task = loop.create_task(self._drain())
        else:
            self._running = False
        return item.future.result()

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self._arriving > 0 and self.max_wait > 0:
                    await self._wait_for_company()
                batch = [
                    self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))
                ]
                try:
                    await self._run(batch, self.inline)
                except Exception as error:  # a bug must fail its requests, never hang them
                    for item in batch:
                        _fail(item, error)
        finally:
            self._running = False

    async def _wait_for_company(self) -> None:
        deadline = self._queue[0].enqueued + self.max_wait
        self._joined = asyncio.Event()
        try:
            while self._arriving > 0 and len(self._queue) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._joined.clear()
                try:
                    await asyncio.wait_for(self._joined.wait(), remaining)
                except TimeoutError:
                    return
        finally:
            self._joined = None

    async def _run(self, batch: list[_Item], inline: bool) -> None:
        """`inline`: every model call of the batch on the event loop (it then never suspends)."""
        live = [item for item in batch if not item.future.done()]
        if not live:
            return
        if len(live) == 1:
            rows, outputs = live[0].rows, live[0].outputs
        else:
            rows = np.concatenate([item.rows for item in live])
            outputs = tuple(dict.fromkeys(name for item in live for name in item.outputs))
        try:
            results = await self._call(rows, outputs, inline)
        except Exception as error:
            if len(live) == 1:
                _fail(live[0], error)
                return
            # Someone's rows broke the batch: find out whose by running each alone.
            for item in live:
                try:
                    alone = await self._call(item.rows, item.outputs, inline)
                except Exception as single:
                    _fail(item, single)
                else:
                    self._report(1, item.rows, alone)
                    _succeed_alone(item, alone)
            return
        self._report(len(live), rows, results)
        if len(live) == 1:
            _succeed_alone(live[0], results)
            return
        offset = 0
        for item in live:
            _succeed(item, results, offset, offset + len(item.rows))
            offset += len(item.rows)

    async def _call(self, rows: NDArray[Any], outputs: tuple[str, ...], inline: bool) -> Results:
        if inline:
            self._inline_calls += 1
            if self._inline_calls % TIME_INLINE_EVERY:
                results = self._predict(rows, outputs)
                self._check(rows, results)
                return results
            results, took = self._timed(rows, outputs)
        else:
            loop = asyncio.get_running_loop()
            results, took = await loop.run_in_executor(self._executor, self._timed, rows, outputs)
        self._cost = took if self._cost is None else self._cost + _EWMA * (took - self._cost)
        self._check(rows, results)
        return results

    @staticmethod
    def _check(rows: NDArray[Any], results: Results) -> None:
        for name, value in results.items():
            if len(value) != len(rows):
                raise ModelError(f"the model returned {len(value)} {name} for {len(rows)} rows")

    def _timed(self, rows: NDArray[Any], outputs: tuple[str, ...]) -> tuple[Results, float]:
        """The model's own time, without the thread hop (see _clock)."""
        started = self._clock()
        results = self._predict(rows, outputs)
        return results, self._clock() - started

    def _report(self, requests: int, rows: NDArray[Any], results: Results) -> None:
        if self._on_batch:
            self._on_batch(requests, rows, results, self._cost or 0.0)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)


def _succeed(item: _Item, results: Results, start: int, stop: int) -> None:
    if not item.future.done():
        item.future.set_result({name: results[name][start:stop] for name in item.outputs})


def _succeed_alone(item: _Item, results: Results) -> None:
    """`results`: of a call for this request's rows and outputs only."""
    if not item.future.done():
        item.future.set_result(results)


def _fail(item: _Item, error: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(error)
