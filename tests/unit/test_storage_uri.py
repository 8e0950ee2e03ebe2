from pathlib import Path

import pytest

from cairn.storage import (
    ArtifactURI,
    InvalidArtifactURI,
    file_uri,
    parse_artifact_uri,
)


@pytest.mark.parametrize(
    ("uri", "claim", "path", "canonical"),
    [
        ("pvc://cairn-artifacts/iris/run-1", "cairn-artifacts", "iris/run-1", None),
        (
            "pvc://cairn-artifacts/iris/run-1/",
            "cairn-artifacts",
            "iris/run-1",
            "pvc://cairn-artifacts/iris/run-1",
        ),
        ("PVC://models.team-a/v_1.0+x", "models.team-a", "v_1.0+x", "pvc://models.team-a/v_1.0+x"),
        ("pvc://cairn-artifacts", "cairn-artifacts", "", "pvc://cairn-artifacts/"),
        ("pvc://cairn-artifacts/", "cairn-artifacts", "", None),
    ],
)
def test_pvc_uris_give_claim_and_relative_path(
    uri: str, claim: str, path: str, canonical: str | None
) -> None:
    parsed = parse_artifact_uri(uri)

    assert (parsed.scheme, parsed.claim, parsed.path) == ("pvc", claim, path)
    assert str(parsed) == (canonical or uri)
    assert parse_artifact_uri(str(parsed)) == parsed


def test_file_uris_give_an_absolute_path() -> None:
    parsed = parse_artifact_uri("file:///var/lib/cairn/my%20model/")

    assert (parsed.scheme, parsed.claim, parsed.path) == ("file", None, "/var/lib/cairn/my model")
    assert parsed.local_path == Path("/var/lib/cairn/my model")
    assert str(parsed) == "file:///var/lib/cairn/my%20model"
    assert parse_artifact_uri(str(parsed)) == parsed


def test_file_uri_of_a_local_path_round_trips(tmp_path: Path) -> None:
    assert parse_artifact_uri(file_uri(tmp_path / "out")).local_path == tmp_path.resolve() / "out"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("cairn-artifacts/iris", "is not an artifact URI: write pvc://<claim>/<path>"),
        ("gs://bucket/iris", "unknown scheme 'gs'"),
        ("pvc:///iris", "names no claim: write pvc://<claim>/<path>"),
        ("pvc://Cairn_Artifacts/iris", "'Cairn_Artifacts' is not a PersistentVolumeClaim name"),
        ("pvc://-artifacts/iris", "starting and ending with a letter or digit"),
        (f"pvc://{'a' * 254}/iris", "at most 253 characters"),
        ("pvc://artifacts//iris", "must be relative; write pvc://artifacts/iris"),
        ("pvc://artifacts/iris//run", "empty path segment: remove the doubled '/'"),
        ("pvc://artifacts/iris/../secrets", "'..' is not allowed"),
        ("pvc://artifacts/./iris", "'.' is not allowed"),
        ("pvc://artifacts/iris run", "may only hold letters, digits"),
        ("pvc://artifacts/iris?version=2", "has a query or fragment"),
        ("file://relative/dir", "absolute path and no host; write file:///<absolute path>"),
        ("file:///data/../etc", "'..' is not allowed"),
    ],
)
def test_invalid_uris_are_refused_with_the_fix(uri: str, message: str) -> None:
    with pytest.raises(InvalidArtifactURI) as error:
        parse_artifact_uri(uri)

    assert message in str(error.value)
    assert repr(uri) in str(error.value)


def test_s3_uris_name_a_bucket_and_a_key() -> None:
    parsed = parse_artifact_uri("s3://cairn-models/iris/run-1/")

    assert (parsed.scheme, parsed.bucket, parsed.path) == ("s3", "cairn-models", "iris/run-1")
    assert str(parsed) == "s3://cairn-models/iris/run-1"
    assert str(parsed.joinpath("model.joblib")) == "s3://cairn-models/iris/run-1/model.joblib"
    assert parse_artifact_uri("s3://data.example/x.parquet").path == "x.parquet"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://Bucket/k", "is not an S3 bucket name"),
        ("s3://b/k", "is not an S3 bucket name"),
        ("s3://a..b/k", "is not an S3 bucket name"),
        ("s3://bucket//k", "must not start with '/'"),
        ("s3://bucket/a/../k", "'..' is not allowed"),
        ("s3://bucket/a b", "may only hold letters"),
    ],
)
def test_bad_s3_uris_say_what_to_write(uri: str, message: str) -> None:
    with pytest.raises(InvalidArtifactURI, match=message):
        parse_artifact_uri(uri)


def test_joinpath_extends_and_validates() -> None:
    base = parse_artifact_uri("pvc://cairn-artifacts/")

    assert str(base.joinpath("ml", "iris-run-1")) == "pvc://cairn-artifacts/ml/iris-run-1"
    assert str(parse_artifact_uri("file:///tmp/a").joinpath("b")) == "file:///tmp/a/b"
    with pytest.raises(InvalidArtifactURI, match=r"'\.\.' is not allowed"):
        base.joinpath("..")


def test_a_pvc_uri_has_no_local_path() -> None:
    with pytest.raises(InvalidArtifactURI, match="where the claim is mounted"):
        _ = ArtifactURI(scheme="pvc", claim="c", path="p").local_path
