from pathlib import Path

import numpy as np
import pytest

from cairn.storage import file_uri
from cairn.training import DatasetError, TrainingSession, data_digest
from cairn.training.datasets import load_dataset


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [
        ("iris", (150, 4), 3),
        ("wine", (178, 13), 3),
        ("breast_cancer", (569, 30), 2),
        ("digits", (1797, 64), 10),
    ],
)
def test_scikit_learn_datasets_load_without_network(
    name: str, shape: tuple[int, int], classes: int
) -> None:
    dataset = load_dataset(f"sklearn://{name}")

    assert dataset.X.shape == shape and dataset.X.dtype == np.float64
    assert len(np.unique(dataset.y)) == classes
    assert len(dataset.feature_names) == shape[1]
    assert dataset.uri == f"sklearn://{name}"
    assert dataset.digest == load_dataset(f"sklearn://{name}").digest


def test_the_diabetes_regression_dataset_has_a_continuous_target() -> None:
    dataset = load_dataset("sklearn://diabetes")

    assert dataset.X.shape == (442, 10) and dataset.y.dtype.kind == "f"


def test_the_digest_is_of_the_data_not_of_its_source(tmp_path: Path) -> None:
    iris = load_dataset("sklearn://iris")
    csv = tmp_path / "iris.csv"
    rows = [
        ",".join([*map(repr, features), str(label)])
        for features, label in zip(iris.X.tolist(), iris.y.tolist(), strict=True)
    ]
    csv.write_text("a,b,c,d,target\n" + "\n".join(rows) + "\n")

    assert load_dataset(file_uri(csv)).digest == iris.digest
    assert data_digest(iris.X, iris.y) == iris.digest
    changed = iris.X.copy()
    changed[0, 0] += 1e-9
    assert data_digest(changed, iris.y) != iris.digest
    assert data_digest(iris.X, iris.y[::-1]) != iris.digest
    assert data_digest(iris.X.reshape(300, 2), iris.y) != iris.digest


def test_csv_label_is_the_target_column_wherever_it_is(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("size,target,weight\n1.5,cat,3\n2.5,dog,4\n\n")

    dataset = load_dataset(file_uri(csv))

    assert dataset.feature_names == ("size", "weight")
    assert dataset.X.tolist() == [[1.5, 3.0], [2.5, 4.0]]
    assert dataset.y.tolist() == ["cat", "dog"]


def test_headerless_csv_takes_the_last_column_as_label(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("5.1,3.5,setosa\n6.2,2.9,versicolor\n")

    dataset = load_dataset(file_uri(csv))

    assert dataset.X.shape == (2, 2)
    assert dataset.feature_names == ("x0", "x1")
    assert dataset.y.tolist() == ["setosa", "versicolor"]


def test_numeric_labels_become_numbers(tmp_path: Path) -> None:
    ints, floats = tmp_path / "ints.csv", tmp_path / "floats.csv"
    ints.write_text("1,0\n2,1\n")
    floats.write_text("1,0.5\n2,1.5\n")

    assert load_dataset(file_uri(ints)).y.dtype.kind == "i"
    assert load_dataset(file_uri(floats)).y.tolist() == [0.5, 1.5]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("a,target\n", "has a header and no rows"),
        ("1\n2\n", "needs at least one feature column and a label"),
        ("a,b,target\n1,2,x\n1,2\n", "line 3: 2 fields, expected 3"),
        ("a,b,target\n1,two,x\n", "line 2, column 'b': 'two' is not a number"),
        ("a,b,target\n1,,x\n", "line 2, column 'b': '' is not a number"),
        ("a,b,target\n1,2, \n", "line 2: the label is empty"),
    ],
)
def test_unreadable_csv_is_reported_with_the_place(
    tmp_path: Path, content: str, message: str
) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text(content)

    with pytest.raises(DatasetError, match=message):
        load_dataset(file_uri(csv))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "sklearn://mnist",
            "sklearn://mnist is not a dataset shipped with scikit-learn; use one of",
        ),
        ("s3://bucket/iris.json", "is not a .csv or .parquet object"),
        ("s3://B/iris.csv", "is not an S3 bucket name"),
        ("iris", "is not supported"),
        ("file:///data/iris.json", "is not a .csv or .parquet file"),
        ("file://data/iris.csv", "file:// URIs take an absolute path"),
        ("file:///nonexistent/iris.csv", "cannot read dataset /nonexistent/iris.csv"),
    ],
)
def test_unsupported_dataset_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(uri)


def test_the_session_loads_the_runs_dataset_or_says_it_has_none() -> None:
    assert TrainingSession(
        {"CAIRN_DATASET_URI": "sklearn://wine"}, finish_at_exit=False
    ).load_dataset().X.shape == (178, 13)
    with pytest.raises(LookupError, match="CAIRN_DATASET_URI is not set"):
        TrainingSession({}, finish_at_exit=False).load_dataset()


def test_a_pvc_dataset_is_read_where_the_operator_mounted_it(tmp_path: Path) -> None:
    mounted = tmp_path / "wine.csv"
    mounted.write_text("a,b,target\n1,2,0\n3,4,1\n")
    data = load_dataset("pvc://datasets/wine.csv", mounted)
    assert data.uri == "pvc://datasets/wine.csv" and data.X.shape == (2, 2)
    # The same rows give the same digest wherever they were read from.
    assert data.digest == load_dataset(f"file://{mounted}").digest
    with pytest.raises(DatasetError, match="where the operator mounts its claim"):
        load_dataset("pvc://datasets/wine.csv")


def _write_both(tmp_path: Path, columns: dict[str, list[object]]) -> tuple[Path, Path]:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    csv = tmp_path / "data.csv"
    csv.write_text(",".join(names) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    parquet = tmp_path / "data.parquet"
    pq.write_table(pa.table(columns), parquet)
    return csv, parquet


@pytest.mark.parametrize(
    "labels", [[0, 1, 2], [0.5, 1.0, 2.5], ["setosa", "versicolor", "virginica"]]
)
def test_the_same_rows_in_csv_and_parquet_have_the_same_digest(
    tmp_path: Path, labels: list[object]
) -> None:
    csv, parquet = _write_both(tmp_path, {"a": [5.1, 4.9, 6.3], "target": labels, "b": [1, 2, 3]})

    from_csv, from_parquet = load_dataset(file_uri(csv)), load_dataset(file_uri(parquet))

    assert from_parquet.digest == from_csv.digest
    assert from_parquet.feature_names == from_csv.feature_names == ("a", "b")
    assert from_parquet.X.tolist() == [[5.1, 1.0], [4.9, 2.0], [6.3, 3.0]]
    assert from_parquet.y.tolist() == from_csv.y.tolist()


def test_parquet_features_must_be_numbers_and_present(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = tmp_path / "words.parquet"
    pq.write_table(pa.table({"name": ["a", "b"], "target": [0, 1]}), words)
    with pytest.raises(DatasetError, match=r"column 'name' is string, not a number"):
        load_dataset(file_uri(words))

    holes = tmp_path / "holes.parquet"
    pq.write_table(pa.table({"x": [1.0, None], "target": [0, 1]}), holes)
    with pytest.raises(DatasetError, match=r"column 'x' has 1 empty values"):
        load_dataset(file_uri(holes))

    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match=r"cannot read dataset .* as Parquet"):
        load_dataset(file_uri(tmp_path / "bad.parquet"))
