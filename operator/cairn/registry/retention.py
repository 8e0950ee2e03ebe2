"""Which versions a Model's retention policy removes (pure)."""

from collections.abc import Iterable


def versions_to_delete(versions: Iterable[int], keep: int, protected: set[int]) -> list[int]:
    """The versions older than the newest `keep`, oldest first, sparing every protected one
    (aliased or deployed)."""
    newest_first = sorted(set(versions), reverse=True)
    return sorted(v for v in newest_first[keep:] if v not in protected)
