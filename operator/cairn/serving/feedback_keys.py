"""Answer ids as 128-bit keys, and a table of positions by key, for the feedback store.

An id of 32 lowercase hex digits (what the server gives every answer) is its 16 bytes; any other
id is its keyed BLAKE2b digest (16 bytes), with a key drawn at start, so that no client can make
two ids collide. The table places a key by a 64-bit mix of its two halves, with multipliers
drawn at start (so that ids differing in a few digits only still spread), and every position it
gives is checked against the full key by its owner. Two ids whose mixes are equal (about one
chance in 10**10 over 100,000 ids) can hide the older from the table's dict: it then reads as
unknown.
"""

import hashlib
import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_SECRET = os.urandom(16)
_MULTIPLIERS = tuple(int.from_bytes(os.urandom(8), "little") | 1 for _ in range(2))
_M0, _M1 = (np.uint64(m) for m in _MULTIPLIERS)
_MASK64 = (1 << 64) - 1
MIN_BUCKET_BITS, MAX_BUCKET_BITS = 8, 30  # a table's buckets: 2**bits, two per position
Keys = NDArray[np.uint64]  # shape (n, 2): an id's 16 bytes as two little-endian halves


def answer_keys(ids: Sequence[str]) -> Keys:
    """The keys of `ids`, in bulk: the server's own ids in one conversion."""
    joined = "".join(ids)
    if ids and set(map(len, ids)) == {32}:
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            pass
        else:
            if raw.hex() == joined:  # lowercase digits only, no spaces (fromhex skips them)
                return np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
    raw = b"".join(map(_key_bytes, ids))
    return np.frombuffer(raw, dtype="<u8").reshape(-1, 2)


def answer_key(answer_id: str) -> tuple[int, int]:
    """One id's key, as two Python ints."""
    raw = _key_bytes(answer_id)
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


def _key_bytes(answer_id: str) -> bytes:
    if len(answer_id) == 32:
        try:
            raw = bytes.fromhex(answer_id)
        except ValueError:
            pass
        else:
            if raw.hex() == answer_id:
                return raw
    data = answer_id.encode("utf-8", "surrogatepass")  # JSON may carry lone surrogates
    return hashlib.blake2b(data, digest_size=16, key=_SECRET).digest()


def mixed(keys: Keys) -> NDArray[np.uint64]:
    """The 64-bit index key of each key (arithmetic modulo 2**64)."""
    mix: NDArray[np.uint64] = keys[:, 0] * _M0 + keys[:, 1] * _M1
    return mix


def mixed_one(key: tuple[int, int]) -> int:
    return (key[0] * _MULTIPLIERS[0] + key[1] * _MULTIPLIERS[1]) & _MASK64


class SlotTable:
    """Where each key was put last: a numpy array of buckets (at least two per position held),
    each holding the newest position put in it, and a dict of the positions pushed out of their
    bucket by another key that the owner still wants. A fold's keys go in with a few numpy
    operations, and a lookup reads a bucket and the dict. Nothing is taken out: positions are
    checked by the owner, who rebuilds the table now and then."""

    def __init__(self, capacity: int) -> None:
        bits = min(MAX_BUCKET_BITS, max(MIN_BUCKET_BITS, (2 * capacity - 1).bit_length()))
        self._shift = np.uint64(64 - bits)  # a bucket is the mix's top bits
        self._buckets = np.full(1 << bits, -1, np.int32)
        self.pushed: dict[int, int] = {}  # mix -> position
        self._pushed_from = np.zeros(1 << bits, bool)  # buckets with positions in the dict

    def put(
        self, mixes: NDArray[np.uint64], positions: NDArray[np.int32]
    ) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.bool_]]:
        """Put each key's position in its bucket (the last of equal buckets wins): what each
        bucket held before (-1: nothing), the positions that lost their bucket to a later one
        (for the owner to `keep` those it still wants), and whether each key's bucket had
        positions pushed into the dict (where an older one of the key may be)."""
        buckets = (mixes >> self._shift).astype(np.intp)
        held = self._buckets[buckets]
        self._buckets[buckets] = positions
        lost = positions[self._buckets[buckets] != positions]
        return held, lost, self._pushed_from[buckets]

    def keep(self, mixes: NDArray[np.uint64], positions: NDArray[np.int32]) -> None:
        """Keep positions pushed out of their buckets (the last of a mix wins)."""
        self.pushed.update(zip(mixes.tolist(), positions.tolist(), strict=True))
        self._pushed_from[(mixes >> self._shift).astype(np.intp)] = True

    def clear(self) -> None:
        self._buckets.fill(-1)
        self._pushed_from.fill(False)
        self.pushed = {}

    def candidates(self, mix: int) -> list[int]:
        """One key's positions to check, the newer first (the bucket's, then the dict's)."""
        in_bucket = int(self._buckets[mix >> int(self._shift)])
        found = [in_bucket] if in_bucket >= 0 else []
        in_dict = self.pushed.get(mix)
        return found if in_dict is None else [*found, in_dict]
