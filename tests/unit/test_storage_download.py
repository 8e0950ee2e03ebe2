"""Downloads hashed on a thread of their own while the parts arrive: the hash is always that of
the bytes in the file, and a download enters the model cache only once it matches its digest
(nothing is unpickled before). The store is a fake of boto3's HEAD and ranged GET, whose bodies
can break off; the real one is exercised in tests/integration/test_object_storage.py."""

import hashlib
import http.client
import http.server
import io
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from cairn.serving.fetch import fetch
from cairn.storage import DigestMismatch, directory_digest
from cairn.storage import transfer as transfer_module
from cairn.storage.s3 import ObjectStoreError, _loader, client
from cairn.storage.transfer import _Extents, _HashingWriter
from cairn.storage.uri import parse_artifact_uri
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
        writer.write_at(offset, chunk)


def test_many_parts_in_any_order_hash_like_one_pass_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_module, "HASH_CHUNK", 4096)  # many reads back per part
    data = random.Random(0).randbytes(300_000)
    parts = [(offset, data[offset : offset + 10_000]) for offset in range(0, len(data), 10_000)]
    random.Random(2).shuffle(parts)
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file, len(data)) as writer:
        write_parts(writer, parts)
        writer.complete(len(data))
    assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert writer.size == len(data)


def test_bytes_rewritten_after_they_were_hashed_are_hashed_again(tmp_path: Path) -> None:
    first, second = b"a" * 5000, b"b" * 100
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file, len(first)) as writer:
        write_parts(writer, [(0, first)])
        while writer.size < len(first):  # the hasher has read the first bytes
            threading.Event().wait(0.001)
        write_parts(writer, [(0, second)])  # a retry that brought other bytes
        writer.complete(len(first))
    on_disk = (tmp_path / "f").read_bytes()
    assert on_disk == second + first[100:]
    assert writer.sha256.hexdigest() == hashlib.sha256(on_disk).hexdigest()


def test_a_failed_download_stops_the_hashing_thread(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file, 200) as writer:
        write_parts(writer, [(0, b"some"), (100, b"ahead")])
    assert not writer._hasher.is_alive()


# --- fetching into the model cache ------------------------------------------------------------


class FakeStore:
    """head_object and ranged get_object of boto3's shape, over objects in memory. A body breaks
    off after `breaks_after` bytes, `breaks` times per object."""

    def __init__(self, objects: dict[str, bytes], breaks_after: int = 0, breaks: int = 0) -> None:
        self.objects = objects
        self.breaks_after = breaks_after
        self.breaks = dict.fromkeys(objects, breaks)
        self.ranges: list[str] = []
        self.lock = threading.Lock()

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"ContentLength": len(self.objects[Key]), "ETag": '"v1"'}

    def get_object(self, Bucket: str, Key: str, Range: str, IfMatch: str) -> dict[str, Any]:
        assert IfMatch == '"v1"'
        first, last = (int(end) for end in Range.removeprefix("bytes=").split("-"))
        data = self.objects[Key][first : last + 1]
        with self.lock:
            self.ranges.append(Range)
            breaking = self.breaks[Key] > 0 and len(data) > self.breaks_after
            self.breaks[Key] -= breaking
        return {"Body": BreakingBody(data, self.breaks_after if breaking else None)}


class BreakingBody(io.BytesIO):
    def __init__(self, data: bytes, breaks_after: int | None) -> None:
        super().__init__(data)
        self.breaks_after = breaks_after

    def readinto(self, buffer: Any) -> int:
        if self.breaks_after is not None and self.tell() >= self.breaks_after:
            raise ResponseStreamingError(error="connection reset")
        limit = len(buffer) if self.breaks_after is None else self.breaks_after - self.tell()
        return super().readinto(memoryview(buffer)[:limit])


def saved_model(tmp_path: Path) -> tuple[Path, str]:
    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    saved = TrainingSession({}, finish_at_exit=False).save_model(model, tmp_path / "saved")
    return saved.path, saved.digest


def serve(
    monkeypatch: pytest.MonkeyPatch, directory: Path, damage: str | None = None, **breaking: int
) -> FakeStore:
    """A store of the model directory's files, in small parts so that they are several."""
    monkeypatch.setattr(transfer_module, "PART", 1000)
    monkeypatch.setattr(transfer_module, "READ", 300)
    objects = {f"iris/v1/{path.name}": path.read_bytes() for path in directory.iterdir()}
    if damage is not None:
        key = f"iris/v1/{damage}"
        objects[key] = objects[key][:-1] + bytes([objects[key][-1] ^ 1])
    store = FakeStore(objects, **breaking)
    monkeypatch.setattr("cairn.training.artifacts.client", lambda environ=None: store)
    return store


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


class MissingBucket:
    """A store without the bucket, answering as S3 does: a bare 404 to a HEAD (it has no body),
    NoSuchBucket to a GET."""

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    def get_object(self, Bucket: str, Key: str, Range: str, **_: Any) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}},
            "GetObject",
        )


def test_a_missing_bucket_is_named_as_such_not_as_a_missing_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cairn.training.artifacts.client", lambda environ=None: MissingBucket())
    with pytest.raises(ObjectStoreError, match="NoSuchBucket"):
        fetch(URI, "sha256:" + "0" * 64, tmp_path / "cache")


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


def test_a_part_that_breaks_off_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved, digest = saved_model(tmp_path)
    store = serve(monkeypatch, saved, breaks_after=400, breaks=2)

    got = fetch(URI, digest, tmp_path / "cache")

    assert got.manifest is not None and got.manifest.digest == digest
    assert directory_digest(got.directory) == digest
    assert {"bytes=0-999", "bytes=400-999"} <= set(store.ranges)  # resumed, not restarted


def test_a_store_that_keeps_breaking_off_fails_the_fetch_and_caches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved, digest = saved_model(tmp_path)
    serve(monkeypatch, saved, breaks_after=0, breaks=1000)

    with pytest.raises(ObjectStoreError, match=r"downloading s3://models/iris/v1/\S+ at AWS S3"):
        fetch(URI, digest, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_parts_written_from_several_threads_hash_like_one_pass(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(200_000)
    spans = [(offset, data[offset : offset + 3000]) for offset in range(0, len(data), 3000)]
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file, len(data)) as writer:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda span: writer.write_at(*span), spans))
        writer.complete(len(data))
    assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


# --- reading through botocore's own HTTP stack ------------------------------------------------


class RangedObjectHandler(http.server.BaseHTTPRequestHandler):
    """One object's HEAD and ranged GET, as an S3 server answers them (no signature checked),
    noting the client port of each request: one port for several requests is a reused
    connection."""

    protocol_version = "HTTP/1.1"
    data = b""
    ports: ClassVar[list[int]] = []

    def do_HEAD(self) -> None:
        self.ports.append(self.client_address[1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.data)))
        self.send_header("ETag", '"v1"')
        self.end_headers()

    def do_GET(self) -> None:
        self.ports.append(self.client_address[1])
        first, last = (int(end) for end in self.headers["Range"][6:].split("-"))
        body = self.data[first : last + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(self.data)}")
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_parts_read_through_botocore_arrive_intact_over_reused_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download reads each part from the HTTP response under botocore's body (no copies in
    urllib3): the bytes and hash must be the object's, and each connection must go back to the
    pool once its part is read, as botocore's own reads leave it."""
    monkeypatch.setattr(transfer_module, "PART", 100_000)
    monkeypatch.setattr(transfer_module, "PARTS_AT_ONCE", 2)
    data = random.Random(4).randbytes(1_000_000)
    requests: list[int] = []
    handler = type("Handler", (RangedObjectHandler,), {"data": data, "ports": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{server.server_address[1]}",
        }.items():
            monkeypatch.setenv(name, value)
        uri, s3 = parse_artifact_uri("s3://models/big/v1"), client()
        got = transfer_module.download_files(uri, ["model.joblib"], tmp_path, s3=s3)
        # With these library versions the parts are read from http.client's response itself.
        body = s3.get_object(Bucket="models", Key="big/v1/model.joblib", Range="bytes=0-9")["Body"]
        reader, _ = transfer_module._socket_reader(body)
        assert isinstance(reader, http.client.HTTPResponse) and reader.read() == data[:10]
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "model.joblib").read_bytes() == data
    assert got.manifest.entries[0].sha256 == hashlib.sha256(data).hexdigest()
    assert len(requests) == 12  # the HEAD, ten parts and the check's GET
    assert len(set(requests)) <= 3  # two parts at a time, connections reused
