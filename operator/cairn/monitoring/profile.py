"""The profile of a data set: per feature, how many values fell in each of a few fixed bins, and
the same for the model's predictions.

The trainer writes the profile of the training data into the model directory (`baseline.json`,
covered by the artifact's digest); the model server counts every input and answer into the same
bins; the operator compares the two. Bins are fixed at training time, so serving needs constant
memory per feature and a window of traffic is a vector of counts:

- a numeric feature has `edges` e_0 < ... < e_k-1 (the training data's deciles): bin 0 holds
  x <= e_0, bin i holds e_i-1 < x <= e_i, bin k holds x > e_k-1;
- a categorical feature (text, booleans) or a classifier's prediction has `values`: one bin each,
  and a last bin for any other value;
- values that are missing (NaN, None) are counted apart, in `missing`.
"""

import contextlib
import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

SCHEMA_VERSION = 1
FILE = "baseline.json"
BINS = 10  # deciles: enough resolution for the tests, few enough for a small window
CATEGORIES_MAX = 20  # the most frequent values of a categorical feature; the rest share a bin
ROWS_MAX = 100_000  # a profile of a larger training set is made from an even sample of it

Kind = Literal["numeric", "categorical"]
# dtypes whose equal values have one text (counted per distinct value): booleans, integers,
# fixed-width bytes and text.
_DISTINCT_KINDS = "biuSU"


class ProfileError(ValueError):
    """A profile that cannot be made or read."""


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Counts of values in fixed bins (see the module's docstring)."""

    kind: Kind
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    values: tuple[str, ...] = ()
    missing: int = 0

    @property
    def bins(self) -> int:
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.values) + 1

    @property
    def total(self) -> int:
        return sum(self.counts) + self.missing

    @functools.cached_property
    def _edges(self) -> NDArray[np.float64]:
        return np.asarray(self.edges, dtype=np.float64)

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {value: i for i, value in enumerate(self.values)}

    def count(self, column: ArrayLike) -> tuple[NDArray[np.int64], int]:
        """The counts of `column`'s values in these bins, and how many were missing."""
        values = np.asarray(column)
        if self.kind == "numeric":
            numbers = _as_float(values)
            present = ~np.isnan(numbers)
            index = np.searchsorted(self._edges, numbers[present], side="left")
            return np.bincount(index, minlength=self.bins).astype(np.int64), int((~present).sum())
        flat = values.reshape(-1)
        if flat.dtype.kind in _DISTINCT_KINDS:
            # Each distinct value's text once, not each row's (floats are not: -0.0 == 0.0).
            unique, times = np.unique(flat, return_counts=True)
            return self._count_texts(unique.tolist(), times.tolist())
        return self._count_texts(flat.tolist(), itertools.repeat(1))

    def _count_texts(
        self, values: list[Any], times: Iterable[int]
    ) -> tuple[NDArray[np.int64], int]:
        position, other = self._positions, self.bins - 1
        counts = [0] * self.bins
        missing = 0
        for value, n in zip(values, times, strict=False):
            text = _category(value)
            if text is None:
                missing += n
            else:
                counts[position.get(text, other)] += n
        return np.asarray(counts, dtype=np.int64), missing

    def with_counts(self, counts: Iterable[int], missing: int) -> "Histogram":
        return dataclasses.replace(self, counts=tuple(int(c) for c in counts), missing=missing)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind, "counts": list(self.counts)}
        if self.kind == "numeric":
            found["edges"] = list(self.edges)
        else:
            found["values"] = list(self.values)
        found["missing"] = self.missing
        return found

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "Histogram":
        if not isinstance(raw, dict) or raw.get("kind") not in ("numeric", "categorical"):
            raise ProfileError(f"{where}: kind must be numeric or categorical")
        try:
            made = cls(
                kind=raw["kind"],
                counts=tuple(int(c) for c in raw["counts"]),
                edges=tuple(float(e) for e in raw.get("edges") or ()),
                values=tuple(str(v) for v in raw.get("values") or ()),
                missing=int(raw.get("missing") or 0),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProfileError(f"{where}: {error}") from None
        if len(made.counts) != made.bins:
            raise ProfileError(f"{where}: {len(made.counts)} counts for {made.bins} bins")
        return made


def _as_float(values: NDArray[Any]) -> NDArray[np.float64]:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False).reshape(-1)
    out = np.full(values.size, np.nan)
    for i, value in enumerate(values.reshape(-1).tolist()):
        with contextlib.suppress(TypeError, ValueError):  # not a number: missing
            out[i] = float(value)
    return out


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def numeric_histogram(column: ArrayLike, bins: int = BINS) -> Histogram:
    """Decile edges of the column's present values, and its counts in them."""
    numbers = _as_float(np.asarray(column))
    present = numbers[~np.isnan(numbers)]
    if present.size:
        quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
        edges = tuple(float(e) for e in np.unique(quantiles))
    else:
        edges = ()
    empty = Histogram("numeric", (0,) * (len(edges) + 1), edges=edges)
    counts, missing = empty.count(numbers)
    return empty.with_counts(counts, missing)


def categorical_histogram(
    column: ArrayLike, values: Sequence[Any] | None = None, limit: int = CATEGORIES_MAX
) -> Histogram:
    """Bins for `values` (a classifier's classes), or for the column's most frequent values."""
    if values is None:
        texts = [t for t in (_category(v) for v in np.asarray(column).reshape(-1).tolist()) if t]
        unique, counts = np.unique(np.asarray(texts, dtype=object), return_counts=True)
        order = sorted(zip(counts.tolist(), unique.tolist(), strict=True), key=lambda p: -p[0])
        chosen = tuple(str(value) for _, value in order[:limit])
    else:
        chosen = tuple(str(v) for v in values)
    empty = Histogram("categorical", (0,) * (len(chosen) + 1), values=chosen)
    counts, missing = empty.count(column)
    return empty.with_counts(counts, missing)


def is_categorical(column: NDArray[Any]) -> bool:
    return column.dtype.kind not in "iuf"


@dataclasses.dataclass(frozen=True)
class Profile:
    rows: int
    features: tuple[tuple[str, Histogram], ...]
    prediction: Histogram | None = None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "rows": self.rows,
            "features": [{"name": n, **h.to_dict()} for n, h in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = FILE) -> "Profile":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ProfileError(f"{where} is not valid JSON: {error}") from None
        return cls.from_dict(raw, where)

    @classmethod
    def from_dict(cls, raw: Any, where: str = FILE) -> "Profile":
        if not isinstance(raw, dict) or raw.get("schemaVersion") != SCHEMA_VERSION:
            raise ProfileError(f"{where}: schemaVersion must be {SCHEMA_VERSION}")
        features = []
        for index, item in enumerate(raw.get("features") or []):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                raise ProfileError(f"{where}: features[{index}] has no name")
            features.append((name, Histogram.from_dict(item, f"{where}: feature {name}")))
        prediction = raw.get("prediction")
        return cls(
            rows=int(raw.get("rows") or 0),
            features=tuple(features),
            prediction=Histogram.from_dict(prediction, f"{where}: prediction")
            if prediction is not None
            else None,
        )


def sample_rows(count: int, limit: int = ROWS_MAX) -> NDArray[np.int64] | slice:
    """An even sample of at most `limit` row indexes (all of them when there are fewer)."""
    if count <= limit:
        return slice(None)
    return np.linspace(0, count - 1, limit).astype(np.int64)


def build(
    X: Any,
    feature_names: Sequence[str],
    predictions: ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
) -> Profile:
    """The profile of the rows X (an array or a DataFrame whose columns are `feature_names`) and
    of the model's `predictions` on them (`classes`: a classifier's, each its own bin)."""
    columns = _columns(X, len(feature_names))
    rows = len(columns[0]) if columns else 0
    features = tuple(
        (
            name,
            categorical_histogram(column) if is_categorical(column) else numeric_histogram(column),
        )
        for name, column in zip(feature_names, columns, strict=True)
    )
    prediction = None
    if predictions is not None:
        answers = np.asarray(predictions).reshape(rows, -1)[:, 0] if rows else np.asarray([])
        prediction = (
            categorical_histogram(answers, values=classes)
            if classes is not None or is_categorical(answers)
            else numeric_histogram(answers)
        )
    return Profile(rows=rows, features=features, prediction=prediction)


def _columns(X: Any, width: int) -> list[NDArray[Any]]:
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a pandas DataFrame: each column's dtype
        return [np.asarray(X.iloc[:, i]) for i in range(width)]
    array = np.asarray(X)
    if array.ndim != 2 or array.shape[1] != width:
        raise ProfileError(
            f"the data has shape {array.shape}; a profile needs rows of {width} features"
        )
    return [array[:, i] for i in range(width)]
