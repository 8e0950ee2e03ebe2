import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from cairn.storage import (
    ArtifactError,
    DigestMismatch,
    InvalidArtifactURI,
    InvalidDigest,
    LocalStore,
    directory_digest,
    directory_manifest,
    file_sha256s,
    file_uri,
    manifest_of,
    open_store,
    verify_digest,
)

FILES = {"model.joblib": b"weights", "cairn-model.json": b"{}", "extra/vocab.txt": b"a\nb\n"}


def _write(directory: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    return directory


def test_the_digest_depends_on_contents_and_paths_not_on_order_or_place(tmp_path: Path) -> None:
    first = _write(tmp_path / "a", FILES)
    second = _write(tmp_path / "b", dict(reversed(FILES.items())))
    os.utime(second / "model.joblib", (0, 0))  # timestamps are not content

    digest = directory_digest(first)

    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert directory_digest(second) == digest
    (second / "model.joblib").write_bytes(b"weights!")
    assert directory_digest(second) != digest
    (second / "model.joblib").write_bytes(b"weights")
    (second / "model.joblib").rename(second / "model2.joblib")
    assert directory_digest(second) != digest


def test_the_digest_is_the_sha256_of_a_sha256sum_manifest(tmp_path: Path) -> None:
    directory = _write(tmp_path, FILES)
    # The recipe in cairn.storage.digest's documentation, so anyone can check an artifact by hand.
    by_hand = subprocess.run(
        "find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum",
        shell=True,
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]

    assert directory_digest(directory) == f"sha256:{by_hand}"


def test_manifest_lists_every_file_with_its_sha256_and_size(tmp_path: Path) -> None:
    manifest = directory_manifest(_write(tmp_path, FILES))

    assert [entry.path for entry in manifest.entries] == sorted(FILES)
    assert manifest.size == sum(len(content) for content in FILES.values())
    assert file_sha256s(tmp_path) == {
        name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()
    }


def test_verify_digest_accepts_the_recorded_digest(tmp_path: Path) -> None:
    directory = _write(tmp_path, FILES)

    assert verify_digest(directory, directory_digest(directory)) == directory_manifest(directory)


def test_verify_digest_names_both_digests_on_mismatch(tmp_path: Path) -> None:
    directory = _write(tmp_path, FILES)
    recorded = directory_digest(directory)
    (directory / "model.joblib").write_bytes(b"tampered")

    with pytest.raises(DigestMismatch) as error:
        verify_digest(directory, recorded)

    assert f"has digest {directory_digest(directory)}, expected {recorded}" in str(error.value)


@pytest.mark.parametrize("expected", ["", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "A" * 64])
def test_verify_digest_refuses_malformed_digests(tmp_path: Path, expected: str) -> None:
    with pytest.raises(InvalidDigest, match="sha256:<64 lowercase hex digits>"):
        verify_digest(tmp_path, expected)


def test_missing_directories_and_links_are_not_artifacts(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        directory_digest(tmp_path / "missing")

    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(ArtifactError, match="is a symbolic link"):
        directory_digest(tmp_path)


def test_stores_read_file_uris_and_mounted_claims(tmp_path: Path) -> None:
    directory = _write(tmp_path, FILES)

    assert manifest_of(open_store(file_uri(directory))) == directory_manifest(directory)
    mounted = open_store("pvc://artifacts/iris", mounted_at=directory)
    assert manifest_of(mounted).digest == directory_digest(directory)
    with pytest.raises(InvalidArtifactURI, match="pass mounted_at="):
        open_store("pvc://artifacts/iris")
    with pytest.raises(ArtifactError, match="not a path inside the artifact"):
        LocalStore(directory).open("../outside")
