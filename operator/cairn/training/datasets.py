"""Datasets by URI: `sklearn://<name>` (shipped inside scikit-learn), and CSV or Parquet files:
`file:///<path>`, `pvc://<claim>/<path>` where the operator mounted the claim
(CAIRN_DATASET_PATH), `s3://<bucket>/<key>` downloaded from the object store.

The digest is of the data read (cairn.training.datasets.data_digest), not of the file: the same
rows in a CSV and in a Parquet file give the same digest."""

import csv
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cairn.storage import InvalidArtifactURI, parse_artifact_uri

# Bundled with scikit-learn: no network needed.
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
TARGET_COLUMN = "target"
_FORMS = (
    "sklearn://<name>, or a .csv or .parquet file as file:///<absolute path>, "
    "pvc://<claim>/<path> or s3://<bucket>/<key>"
)
FILE_FORMATS = (".csv", ".parquet")


class DatasetError(ValueError):
    """A dataset URI that is not supported, or data that cannot be read."""


@dataclass(frozen=True)
class Dataset:
    X: NDArray[np.float64]
    y: NDArray[Any]
    uri: str
    digest: str
    feature_names: tuple[str, ...]


def load_dataset(uri: str, local_path: Path | None = None) -> Dataset:
    """The dataset at `uri`; `local_path`: where a pvc:// dataset is mounted in this pod."""
    scheme, separator, rest = uri.partition("://")
    if separator and scheme == "sklearn":
        X, y, feature_names = _load_sklearn(rest.strip("/"))
    elif separator and scheme == "pvc":
        if local_path is None:
            raise DatasetError(
                f"{uri} is read where the operator mounts its claim: load it inside a "
                "TrainingRun whose spec.dataset.uri names it, or give a file:// URI"
            )
        X, y, feature_names = _load_file(local_path)
    elif separator and scheme == "file":
        try:
            path = parse_artifact_uri(uri).local_path
        except InvalidArtifactURI as error:
            raise DatasetError(str(error)) from None
        X, y, feature_names = _load_file(path)
    elif separator and scheme == "s3":
        X, y, feature_names = _load_s3(uri)
    else:
        raise DatasetError(f"dataset URI {uri!r} is not supported: write {_FORMS}")
    return Dataset(X=X, y=y, uri=uri, digest=data_digest(X, y), feature_names=feature_names)


def data_digest(X: NDArray[Any], y: NDArray[Any]) -> str:
    """sha256 of a canonical serialization of the data, independent of where it was read from.

    Each array contributes a JSON header (dtype, shape) and its bytes: numbers as little-endian
    int64, uint64, float64 or bool in C order; anything else as a JSON list of strings.
    """
    sha256 = hashlib.sha256()
    for array in (X, y):
        dtype, payload = _canonical_bytes(np.asarray(array))
        header = json.dumps({"dtype": dtype, "shape": list(np.shape(array))}, sort_keys=True)
        sha256.update(header.encode() + b"\n")
        sha256.update(payload)
    return "sha256:" + sha256.hexdigest()


def _canonical_bytes(array: NDArray[Any]) -> tuple[str, bytes]:
    kinds = {"b": "|b1", "i": "<i8", "u": "<u8", "f": "<f8"}
    if array.dtype.kind in kinds:
        canonical = np.ascontiguousarray(array, dtype=kinds[array.dtype.kind])
        return canonical.dtype.str, canonical.tobytes(order="C")
    return "str", json.dumps([str(item) for item in array.ravel().tolist()]).encode()


def _load_sklearn(name: str) -> tuple[NDArray[np.float64], NDArray[Any], tuple[str, ...]]:
    if name not in SKLEARN_DATASETS:
        raise DatasetError(
            f"sklearn://{name} is not a dataset shipped with scikit-learn; "
            f"use one of: {', '.join('sklearn://' + known for known in SKLEARN_DATASETS)}"
        )
    # Imported here: the model server imports this package but never loads datasets.
    from sklearn import datasets  # type: ignore[import-untyped]

    bunch = getattr(datasets, f"load_{name}")()
    feature_names = tuple(str(feature) for feature in bunch.feature_names)
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), feature_names


Table = tuple[NDArray[np.float64], NDArray[Any], tuple[str, ...]]


def _load_file(path: Path) -> Table:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _load_csv(path)
    if suffix == ".parquet":
        return _load_parquet(path)
    raise DatasetError(f"{path} is not a .csv or .parquet file: datasets are CSV or Parquet")


def _load_s3(uri: str) -> Table:
    """Download the object, then read it as its suffix says."""
    # Imported here: only s3:// datasets need boto3.
    from cairn.storage.s3 import ObjectStoreError
    from cairn.storage.transfer import download_object

    try:
        parsed = parse_artifact_uri(uri)
    except InvalidArtifactURI as error:
        raise DatasetError(str(error)) from None
    name = Path(parsed.path).name
    if Path(name).suffix.lower() not in FILE_FORMATS:
        raise DatasetError(f"{uri} is not a .csv or .parquet object: datasets are CSV or Parquet")
    with tempfile.TemporaryDirectory(prefix="cairn-dataset-") as scratch:
        local = Path(scratch) / name
        try:
            download_object(parsed, local)
        except ObjectStoreError as error:
            raise DatasetError(str(error)) from None
        X, y, names = _load_file(local)
    return X, y, names


def _load_parquet(path: Path) -> Table:
    """As a CSV: features are every other column, all numeric; the label is the `target` column,
    else the last. Labels are read as a CSV's text would be, so both formats agree."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise DatasetError(f"cannot read dataset {path} as Parquet: {error}") from None
    names = list(table.column_names)
    if len(names) < 2:
        raise DatasetError(f"dataset {path} needs at least one feature column and a label")
    if table.num_rows == 0:
        raise DatasetError(f"dataset {path} has no rows")
    label = names.index(TARGET_COLUMN) if TARGET_COLUMN in names else len(names) - 1
    columns = []
    for index, name in enumerate(names):
        column = table.column(index)
        if column.null_count:
            raise DatasetError(f"{path} column {name!r} has {column.null_count} empty values")
        if index == label:
            continue
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise DatasetError(
                f"{path} column {name!r} is {column.type}, not a number (features are numeric; "
                f"the label is the {TARGET_COLUMN!r} or last column)"
            )
        columns.append(np.asarray(column.to_numpy(), dtype=np.float64))
    labels = [str(value).strip() for value in table.column(label).to_pylist()]
    feature_names = tuple(name for index, name in enumerate(names) if index != label)
    return np.column_stack(columns), _label_array(labels), feature_names


def _load_csv(path: Path) -> Table:
    """Features are every numeric column; the label is the `target` column, else the last."""
    try:
        with path.open(newline="") as file:
            rows = [(number, row) for number, row in enumerate(csv.reader(file), 1) if row]
    except OSError as error:
        raise DatasetError(f"cannot read dataset {path}: {error.strerror}") from None
    if not rows:
        raise DatasetError(f"dataset {path} is empty")

    first = rows[0][1]
    if len(first) < 2:
        raise DatasetError(f"dataset {path} needs at least one feature column and a label")
    # A header names "target", or has a name where a feature's number would be.
    has_header = TARGET_COLUMN in first or not all(_is_number(cell) for cell in first[:-1])
    names = first if has_header else [f"x{index}" for index in range(len(first) - 1)] + ["y"]
    label = names.index(TARGET_COLUMN) if TARGET_COLUMN in names else len(names) - 1
    data = rows[1:] if has_header else rows
    if not data:
        raise DatasetError(f"dataset {path} has a header and no rows")

    features: list[list[float]] = []
    labels: list[str] = []
    for line, row in data:
        if len(row) != len(names):
            raise DatasetError(f"{path} line {line}: {len(row)} fields, expected {len(names)}")
        values = []
        for column, cell in enumerate(row):
            if column == label:
                if not cell.strip():
                    raise DatasetError(f"{path} line {line}: the label is empty")
                labels.append(cell.strip())
            elif _is_number(cell):
                values.append(float(cell))
            else:
                raise DatasetError(
                    f"{path} line {line}, column {names[column]!r}: {cell!r} is not a number "
                    f"(features are numeric; the label is the {TARGET_COLUMN!r} or last column)"
                )
        features.append(values)
    feature_names = tuple(name for column, name in enumerate(names) if column != label)
    return np.asarray(features, dtype=np.float64), _label_array(labels), feature_names


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_array(labels: list[str]) -> NDArray[Any]:
    """Integers when every label is one, then floats, else strings."""
    for kind in (int, float):
        try:
            return np.asarray([kind(label) for label in labels])
        except ValueError:
            continue
    return np.asarray(labels)
