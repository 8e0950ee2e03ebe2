"""Downloads hashed on a thread of their own while the parts arrive: the hash is always that of
the bytes in the file, and a download enters the model cache only once it matches its digest
(nothing is unpickled before). The store is a fake that writes parts out of order, as s3transfer
does; the real one is exercised in tests/integration/test_object_storage.py."""

import hashlib
import random
import threading
from pathlib import Path
from typing import IO, Any

import pytest
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from cairn.serving.fetch import fetch
from cairn.storage import DigestMismatch, directory_digest
from cairn.storage import transfer as transfer_module
from cairn.storage.s3 import _loader, client
from cairn.storage.transfer import _Extents, _HashingWriter
from cairn.training import TrainingSession

URI = "s3://models/iris/v1"


# --- the written extents ----------------------------------------------------------------------


def test_extents_grow_a_front_and_tell_overlaps() -> None:
    extents = _Extents()
    assert not extents.add(10, 20) and (extents.front, extents.ahead) == (0, [(10, 20)])
    assert not extents.add(20, 30) and extents.ahead == [(10, 30)]  # adjacent: merged
    assert not extents.add(0, 10) and (extents.front, extents.ahead) == (30, [])
    assert extents.add(5, 15) and extents.front == 30  # written before
    assert not extents.add(40, 50) and extents.add(45, 60) and extents.ahead == [(40, 60)]


# --- the hashing thread -----------------------------------------------------------------------


def write_parts(writer: _HashingWriter, parts: list[tuple[int, bytes]]) -> None:
    for offset, chunk in parts:
        writer.seek(offset)
        writer.write(chunk)


def test_many_parts_in_any_order_hash_like_one_pass_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_module, "HASH_CHUNK", 4096)  # many reads back per part
    data = random.Random(0).randbytes(300_000)
    parts = [(offset, data[offset : offset + 10_000]) for offset in range(0, len(data), 10_000)]
    random.Random(2).shuffle(parts)
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file) as writer:
        write_parts(writer, parts)
        writer.complete(len(data))
    assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert writer.size == len(data)


def test_bytes_rewritten_after_they_were_hashed_are_hashed_again(tmp_path: Path) -> None:
    first, second = b"a" * 5000, b"b" * 100
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file) as writer:
        write_parts(writer, [(0, first)])
        while writer.size < len(first):  # the hasher has read the first bytes
            threading.Event().wait(0.001)
        write_parts(writer, [(0, second)])  # a retry that brought other bytes
        writer.complete(len(first))
    on_disk = (tmp_path / "f").read_bytes()
    assert on_disk == second + first[100:]
    assert writer.sha256.hexdigest() == hashlib.sha256(on_disk).hexdigest()


def test_a_failed_download_stops_the_hashing_thread(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file) as writer:
        write_parts(writer, [(0, b"some"), (100, b"ahead")])
    assert not writer._hasher.is_alive()


# --- fetching into the model cache ------------------------------------------------------------


class FakeStore:
    """download_fileobj of s3transfer's shape: a seekable target gets the object in parts, out
    of order."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def download_fileobj(
        self, bucket: str, key: str, fileobj: IO[Any], Config: Any = None, Callback: Any = None
    ) -> None:
        data = self.objects[key]
        offsets = list(range(0, len(data), 700))
        random.Random(key).shuffle(offsets)
        for offset in offsets:
            fileobj.seek(offset)
            fileobj.write(data[offset : offset + 700])


def saved_model(tmp_path: Path) -> tuple[Path, str]:
    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    saved = TrainingSession({}, finish_at_exit=False).save_model(model, tmp_path / "saved")
    return saved.path, saved.digest


def serve(monkeypatch: pytest.MonkeyPatch, directory: Path, damage: str | None = None) -> None:
    objects = {f"iris/v1/{path.name}": path.read_bytes() for path in directory.iterdir()}
    if damage is not None:
        key = f"iris/v1/{damage}"
        objects[key] = objects[key][:-1] + bytes([objects[key][-1] ^ 1])
    store = FakeStore(objects)
    monkeypatch.setattr("cairn.training.artifacts.client", lambda environ=None: store)


def test_a_download_enters_the_cache_under_the_digest_of_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved, digest = saved_model(tmp_path)
    serve(monkeypatch, saved)

    got = fetch(URI, digest, tmp_path / "cache")

    assert not got.cache_hit and got.manifest is not None and got.manifest.digest == digest
    assert directory_digest(got.directory) == digest
    assert fetch(URI, digest, tmp_path / "cache").cache_hit


def test_a_corrupted_download_is_refused_and_not_cached_nor_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved, digest = saved_model(tmp_path)
    serve(monkeypatch, saved, damage="model.joblib")

    def never(*_: object, **__: object) -> None:
        raise AssertionError("a pickle was opened before its digest was verified")

    monkeypatch.setattr("joblib.load", never)
    with pytest.raises(DigestMismatch, match=f"expected {digest}"):
        fetch(URI, digest, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # no entry, no staging left


# --- making clients ---------------------------------------------------------------------------


def test_clients_share_one_loader_without_growing_its_search_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}.items():
        monkeypatch.setenv(name, value)
    made = [client({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}) for _ in range(3)]

    paths = _loader().search_paths
    assert len(paths) == len(set(paths)) and any(path.endswith("boto3/data") for path in paths)
    assert all(hasattr(each, "download_fileobj") for each in made)
