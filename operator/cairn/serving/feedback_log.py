"""What the feedback store holds, in numpy arrays rather than a Python object per answer: the
kept answers in the order they were folded in (AnswerLog) and the ids forgotten since, with
why, in a ring (ForgottenIds). An answer costs its key, time, offset and a flag, plus its rows;
the garbage collector has nothing of them to walk.
"""

import functools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cairn.serving.feedback_keys import Keys, SlotTable, mixed, mixed_one

SPARE_SLOTS = 1024  # at least this many slots beyond `size` (a fold's worth: FOLD_ANSWERS)
SCAN = 256  # slots looked at per step when expiring
# Types kept as they are (widened within their kind, which changes no value); any other type,
# or labels of different kinds, are kept as Python objects.
_EXACT_KINDS = frozenset("biufSU")
_dtype_of = operator.attrgetter("dtype")


class AnswerLog:
    """Kept answers, oldest first: key, time, rows [starts[i], starts[i + 1]) of `values`, and
    whether it is still alive (not expired, scored, nor answered again). Dead slots are skipped.
    When the arrays are full, the answers from the oldest alive on are moved to the front: the
    table holds slot + `_shift`, so it stays as it is. When too few slots would be freed that
    way (dead ones in the middle), or the table's dict has grown (it keeps every position pushed
    out of its bucket, dead ones too, until it is rebuilt), only the live answers are kept, and
    the table is rebuilt."""

    def __init__(self, size: int) -> None:
        self._spare = max(size // 2, SPARE_SLOTS)  # slots filled between two squeezes, at least
        capacity = size + self._spare
        self.keys: Keys = np.empty((capacity, 2), np.uint64)
        self._times = np.empty(capacity, np.float64)
        self._starts = np.zeros(capacity + 1, np.int64)
        self._alive = np.zeros(capacity, bool)
        self._values: NDArray[Any] = np.empty(0)  # typed by the first answers
        self._first = 0  # no answer before it is alive
        self._end = 0
        self.alive = 0
        self._table = SlotTable(capacity)
        self._shift = 0  # slots moved off the front since the table was rebuilt

    def add(self, keys: Keys, times: NDArray[np.float64], columns: Sequence[NDArray[Any]]) -> None:
        """Answers folded in, in order (`columns`: each one's rows); an earlier answer of the
        same id is dead from now on."""
        n = len(keys)
        rows = np.fromiter(map(len, columns), np.int64, n)
        total = int(rows.sum())
        types = set(map(_dtype_of, columns))
        dtype = _values_type(None if self._end == 0 else self._values.dtype, types)
        if dtype != self._values.dtype:
            self._values = self._values.astype(dtype)
        used = int(self._starts[self._end])
        if self._end + n > len(self._alive) or used + total > len(self._values):
            self._squeeze(n, total)
            used = int(self._starts[self._end])
        start, end = self._end, self._end + n
        self.keys[start:end] = keys
        self._times[start:end] = times
        self._alive[start:end] = True
        np.cumsum(rows, out=self._starts[start + 1 : end + 1])
        self._starts[start + 1 : end + 1] += used
        _join(columns, types, self._values[used : used + total])
        self._end = end
        self.alive += n
        mixes = mixed(keys)
        shift = self._shift
        held, lost, pushed = self._table.put(
            mixes, np.arange(start + shift, end + shift, dtype=np.int32)
        )
        held -= shift  # slots (negative: moved off the front, or none)
        self._bury_earlier(keys, mixes, held, pushed)
        # Answers pushed out of their buckets and still alive: older ones, then this fold's.
        older = held[held >= 0]
        older = older[self._alive[older]]
        self._table.keep(
            np.concatenate((mixed(self.keys[older]), mixes[lost - (start + shift)])),
            np.concatenate((older + shift, lost)).astype(np.int32),
        )
        if len(lost) and len(set(mixes.tolist())) < n:  # an id answered twice in this fold
            self._bury_repeats(start, end)

    def find(self, key: tuple[int, int]) -> int:
        """The slot of the id's live answer, -1 for none."""
        candidates = (c - self._shift for c in self._table.candidates(mixed_one(key)))
        slots = [s for s in candidates if self._holds(s, key)]
        newest = max(slots, default=-1)  # an older answer of the id is dead
        return newest if newest >= 0 and self._alive[newest] else -1

    def rows(self, slot: int) -> list[Any]:
        """An answer's labels or values, as Python values."""
        rows: list[Any] = self._values[self._starts[slot] : self._starts[slot + 1]].tolist()
        return rows

    def drop(self, slot: int) -> None:
        self._alive[slot] = False
        self.alive -= 1

    def expire(self, size: int, ttl_s: float, now: float) -> NDArray[np.intp]:
        """Drop the oldest live answers beyond `size`, then those older than `ttl_s`; their
        slots, oldest first."""
        alive, times, end = self._alive, self._times, self._end
        at = self._first
        excess = self.alive - size
        if excess <= 0 and (at == end or (alive[at] and now - times[at] <= ttl_s)):
            return np.empty(0, np.intp)  # the oldest is alive and young enough
        dropped: list[NDArray[np.intp]] = []
        while excess > 0 and at < end:
            stop = min(end, at + max(2 * excess, SCAN))
            found = np.flatnonzero(alive[at:stop])[:excess] + at
            at = int(found[-1]) + 1 if len(found) == excess else stop
            dropped.append(found)
            excess -= len(found)
        while at < end:
            stop = min(end, at + SCAN)
            live = alive[at:stop]
            fresh = np.flatnonzero(live & (now - times[at:stop] <= ttl_s))
            if len(fresh):
                dropped.append(np.flatnonzero(live[: fresh[0]]) + at)
                at += int(fresh[0])
                break
            dropped.append(np.flatnonzero(live) + at)
            at = stop
        self._first = at
        slots = np.concatenate(dropped) if dropped else np.empty(0, np.intp)
        alive[slots] = False
        self.alive -= len(slots)
        return slots

    def _holds(self, slot: int, key: tuple[int, int]) -> bool:
        return 0 <= slot < self._end and tuple(self.keys[slot].tolist()) == key

    def _bury_earlier(
        self,
        keys: Keys,
        mixes: NDArray[np.uint64],
        held: NDArray[np.int32],
        pushed: NDArray[np.bool_],
    ) -> None:
        """An id answered before, and still alive, is dead now: its newest answer came. Its
        older slot is in its bucket (`held`, what the bucket held before) or, when its bucket
        had slots `pushed` out, in the table's dict."""
        at = np.flatnonzero(held >= 0)
        slots = held[at]
        maybe = self.keys[slots, 0] == keys[at, 0]
        at, slots = at[maybe], slots[maybe]
        if pushed.any():
            listed = self._table.pushed
            extra = [
                (i, listed[mix] - self._shift)
                for i, mix in zip(
                    np.flatnonzero(pushed).tolist(), mixes[pushed].tolist(), strict=True
                )
                if mix in listed
            ]
            extra = [(i, slot) for i, slot in extra if slot >= 0]
            at = np.append(at, [i for i, _ in extra]).astype(np.intp)
            slots = np.append(slots, [slot for _, slot in extra]).astype(np.intp)
        if not len(slots):
            return
        same = (self.keys[slots] == keys[at]).all(axis=1) & self._alive[slots]
        buried = np.unique(slots[same])  # an id twice in this fold names its slot twice
        self._alive[buried] = False
        self.alive -= len(buried)

    def _bury_repeats(self, start: int, end: int) -> None:
        last = {key: slot for slot, key in enumerate(map(tuple, self.keys[start:end].tolist()))}
        repeats = sorted(set(range(end - start)) - set(last.values()))
        self._alive[np.asarray(repeats, np.intp) + start] = False
        self.alive -= len(repeats)

    def _squeeze(self, incoming: int, incoming_rows: int) -> None:
        """Make room for the incoming answers and their rows."""
        first, end = self._first, self._end
        rows = int(self._starts[end] - self._starts[first])
        if (
            end - first + incoming <= len(self._alive)
            and rows + incoming_rows <= len(self._values)
            and self.alive >= (end - first) * 3 // 4
            and self._shift + first < 2**30  # positions stay int32
            and len(self._table.pushed) <= len(self._alive) // 4
        ):
            self._move_to_front()
        else:
            self._keep_alive_only(incoming, incoming_rows)

    def _move_to_front(self) -> None:
        first, end = self._first, self._end
        n, row = end - first, int(self._starts[first])
        rows = int(self._starts[end]) - row
        self.keys[:n] = self.keys[first:end]
        self._times[:n] = self._times[first:end]
        self._alive[:n] = self._alive[first:end]
        self._alive[n:end] = False
        self._starts[: n + 1] = self._starts[first : end + 1] - row
        self._values[:rows] = self._values[row : row + rows]
        self._first, self._end = 0, n
        self._shift += first

    def _keep_alive_only(self, incoming: int, incoming_rows: int) -> None:
        """Move the live answers to the front (and their rows), growing the arrays when the
        incoming answers would not fit, then put the slots in the table again."""
        keep = np.flatnonzero(self._alive[self._first : self._end]) + self._first
        n = len(keep)
        starts = self._starts[keep]
        lengths = self._starts[keep + 1] - starts
        new_starts = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=new_starts[1:])
        kept_rows = int(new_starts[-1])
        gather = np.repeat(starts - new_starts[:-1], lengths) + np.arange(kept_rows)
        values = self._values[gather]
        if n + incoming > len(self._alive):
            self._grow(n + incoming + self._spare)
        need = kept_rows + incoming_rows
        if len(self._values) < need or len(self._values) > 4 * max(need, len(self._alive)):
            self._values = np.empty(max(2 * need, len(self._alive)), self._values.dtype)
        self._values[:kept_rows] = values
        self.keys[:n] = self.keys[keep]
        self._times[:n] = self._times[keep]
        self._starts[: n + 1] = new_starts
        self._alive[:n] = True
        self._alive[n : self._end] = False
        self._first, self._end, self._shift = 0, n, 0
        self._table.clear()
        mixes = mixed(self.keys[:n])
        _, lost, _ = self._table.put(mixes, np.arange(n, dtype=np.int32))
        self._table.keep(mixes[lost], lost)

    def _grow(self, capacity: int) -> None:
        keys = np.empty((capacity, 2), np.uint64)
        times = np.empty(capacity, np.float64)
        starts = np.zeros(capacity + 1, np.int64)
        alive = np.zeros(capacity, bool)
        end = self._end
        keys[:end], times[:end], alive[:end] = self.keys[:end], self._times[:end], self._alive[:end]
        starts[: end + 1] = self._starts[: end + 1]
        self.keys, self._times, self._starts, self._alive = keys, times, starts, alive
        self._table = SlotTable(capacity)


def _join(columns: Sequence[NDArray[Any]], types: set[np.dtype[Any]], out: NDArray[Any]) -> None:
    """Every answer's rows into `out`, one after another."""
    if len(types) == 1 and (only := next(iter(types))).kind in _EXACT_KINDS and only.isnative:
        try:  # their bytes, joined: three times as fast as concatenate for answers of a row
            out[...] = np.frombuffer(b"".join(columns), only)  # type: ignore[arg-type]
            return
        except TypeError:  # a column that is not contiguous
            pass
    np.concatenate(columns, out=out, casting="safe")


def _values_type(kept: np.dtype[Any] | None, incoming: set[np.dtype[Any]]) -> np.dtype[Any]:
    """One type for every row kept: the labels' own when they are of one kind (the widest of
    it), else Python objects (what `tolist()` gives back is the same either way)."""
    types = incoming | ({kept} if kept is not None else set())
    if len({t.kind for t in types}) == 1 and next(iter(types)).kind in _EXACT_KINDS:
        return functools.reduce(np.promote_types, types)
    return np.dtype(object)


class ForgottenIds:
    """The last `size` ids forgotten and why (a small code), in a ring: an id forgotten twice
    takes two places, and the newest says why. Forgetting only writes the ring (it happens on
    the request path); the table of positions catches up when a lookup needs it, with positions
    counted from `_base` (set again, and the table rebuilt, once they pass 3 * size)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: Keys = np.zeros((size, 2), np.uint64)
        self._why = np.zeros(size, np.uint8)
        self._total = 0  # ids ever forgotten: the next one's position
        self._base = 0  # the position the table counts from
        self._indexed = 0  # positions before it are in the table
        self._table = SlotTable(size)

    def forget(self, keys: Keys, why: int) -> None:
        n, size = len(keys), self._size
        newest = keys[-size:]  # the older ones of a larger batch are pushed out at once
        place = (self._total + n - len(newest)) % size
        first = min(len(newest), size - place)  # up to the end of the ring, then from 0
        self._keys[place : place + first] = newest[:first]
        self._why[place : place + first] = why
        self._keys[: len(newest) - first] = newest[first:]
        self._why[: len(newest) - first] = why
        self._total += n

    def forget_one(self, key: tuple[int, int], why: int) -> None:
        place = self._total % self._size
        self._keys[place] = key
        self._why[place] = why
        self._total += 1

    def why(self, key: tuple[int, int]) -> int | None:
        """Why the id was forgotten, None when it was not (or too long ago)."""
        self._catch_up()
        oldest, size = self._total - self._size, self._size
        held = [
            position
            for position in (c + self._base for c in self._table.candidates(mixed_one(key)))
            if position >= oldest and tuple(self._keys[position % size].tolist()) == key
        ]
        return int(self._why[max(held) % size]) if held else None

    def _catch_up(self) -> None:
        """Put the positions forgotten since the last lookup in the table."""
        total, size = self._total, self._size
        oldest = max(0, total - size)
        start = self._indexed
        if start < oldest or total - self._base > 3 * size:
            self._base = start = oldest
            self._table.clear()
        if start == total:
            return
        positions = np.arange(start, total, dtype=np.int64)
        mixes = mixed(self._keys[positions % size])
        held, lost, _ = self._table.put(mixes, (positions - self._base).astype(np.int32))
        older = held[held >= 0].astype(np.int64) + self._base
        older = older[older >= oldest]  # not overwritten since
        self._table.keep(
            np.concatenate((mixed(self._keys[older % size]), mixes[lost - (start - self._base)])),
            np.concatenate(((older - self._base).astype(np.int32), lost)),
        )
        self._indexed = total
