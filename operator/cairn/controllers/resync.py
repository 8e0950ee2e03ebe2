"""Periodic, level-based resync of Cairn's objects, without kopf timers.

kopf puts its finalizer on every object that has a timer or a daemon. With timers, no TrainingRun,
Model or ModelVersion could be deleted while the operator is not running (uninstalled, crashed,
scaled to zero), and their namespaces would hang in Terminating. Instead, each controller declares
a kopf index (indexes add no finalizer) of the objects it wants revisited and how often, keyed
`(namespace, name)`, and registers how to reconcile one; a single task started with the operator
walks the indexes and reconciles each object when it is due. A kind revisited at one interval
whatever its state uses the watch cache's own index by name (`every`) rather than an index of
its own: each index costs ~0.7 KiB an object, and a call on kopf's event loop per event.
"""

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from cairn.kube import cache, events

TICK_SECONDS = 1.0
SLACK_SECONDS = 0.1
# Reconciles wait on the API server, not the CPU: many at once keep a burst short (200
# ContinuousTrainings due at the same second: with 32 threads the last creates waited behind the
# first ones' status writes, with 100 half the burst asks at once; 200 cost 20 MiB more for
# little). A pool of its own: asyncio's default one has only a few threads on a small machine,
# and kopf's handlers use theirs.
CONCURRENCY = 100

# This many visits under way is a burst: Events wait for it to pass (kube.events.hold_while).
BURST_VISITS = 8

Key = tuple[str, str]
Reconcile = Callable[[str, str], None]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Resync:
    index: str  # the name of the kopf index handler, as kopf passes it to handlers
    reconcile: Reconcile  # (namespace, name) → None
    every: float | None = None  # one interval for every key; None: the index's values


RESYNCS: list[Resync] = []


def register(index: Callable[..., Any], reconcile: Reconcile, every: float | None = None) -> None:
    """Revisit the objects of the kopf index handler `index` with `reconcile`. The index maps
    (namespace, name) to the interval in seconds, or to anything when `every` gives it; an
    object absent from it is not revisited."""
    RESYNCS.append(Resync(index.__name__, reconcile, every))


def due(intervals: Mapping[Key, float], last: dict[Key, float], now: float) -> list[Key]:
    """Keys whose interval has passed since their last visit; a key seen for the first time is
    visited one interval later (the handler that put it in the index has just reconciled it)."""
    ready = []
    for key, interval in intervals.items():
        seen = last.setdefault(key, now)
        # Ticks are a second apart by the wall clock, give or take the sleep's precision: a
        # one-second interval must not slip to two.
        if now - seen >= interval - SLACK_SECONDS:
            last[key] = now
            ready.append(key)
    for key in set(last) - set(intervals):
        del last[key]
    return ready


def intervals(index: Any, every: float | None = None) -> dict[Key, float]:
    """Each key of the kopf index and its interval: `every`, or the least of its values."""
    if every is not None:
        return {key: every for key, store in list(index.items()) if store}
    return {key: min(store) for key, store in list(index.items()) if store}


def _until_next_tick(now: float) -> float:
    """Seconds to the next whole second of the wall clock, and a little more: schedule times
    are whole seconds, so a tick just after one acts on it at once."""
    return TICK_SECONDS - (now % TICK_SECONDS) + 0.01


_running: set[tuple[str, Key]] = set()  # the visits under way


def in_burst() -> bool:
    """Whether many reconciles are under way at once (200 schedule times at one second)."""
    return len(_running) >= BURST_VISITS


async def _run(resyncs: list[tuple[Resync, Any]]) -> None:
    last: dict[str, dict[Key, float]] = {r.index: {} for r, _ in resyncs}
    running = _running
    pool = concurrent.futures.ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="resync")
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def visit(resync: Resync, key: Key) -> None:
        try:
            await loop.run_in_executor(pool, resync.reconcile, *key)
        except (asyncio.CancelledError, cache.NotInstalled):
            pass  # the operator is stopping
        except Exception:  # one object's failure must not stop the others' resync
            logger.exception("resync of %s %s/%s failed", resync.index, *key)
        finally:
            running.discard((resync.index, key))

    try:
        while True:
            await asyncio.sleep(_until_next_tick(time.time()))
            now = time.monotonic()
            for resync, index in resyncs:
                for key in due(intervals(index, resync.every), last[resync.index], now):
                    # A visit still under way is not queued twice; the next tick comes again.
                    if (resync.index, key) in running:
                        continue
                    running.add((resync.index, key))
                    task = asyncio.create_task(visit(resync, key))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
    finally:
        # Visits not started are dropped; those under way finish before the operator stops.
        pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.gather(*tasks, return_exceptions=True)


@kopf.on.startup()
async def start_resync(memo: kopf.Memo, **kwargs: Any) -> None:
    resyncs = [(r, kwargs[r.index]) for r in RESYNCS]
    events.hold_while(in_burst)
    memo["resync_task"] = asyncio.create_task(_run(resyncs))


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("resync_task")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
