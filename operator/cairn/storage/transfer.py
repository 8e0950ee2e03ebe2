"""Moving an artifact directory to and from an s3:// prefix, hashing the bytes as they move.

An artifact's objects are `<prefix>/<relative path>`, one per file. An upload reports the
manifest (cairn.storage.digest) of the bytes it sent, so the digest a run records is the digest of
what the store has; a download hashes what it receives, so a directory is known to match its
digest the moment it is written, without reading it again.

Large files go in parts (multipart upload, ranged downloads), several at a time; downloaded
parts are written at their offsets as they arrive, and a thread of the download's own hashes the
file's written prefix as it grows. Downloads are ranged GETs of our own rather than s3transfer's:
each part is read from its socket into one buffer and written from there, with no copy on the
way. The client's CPU is what limits a download here (the store takes the other core), so each
copy of a 200 MB model saved is tens of milliseconds: this path uses about a third less CPU than
boto3's own download, which leaves room for the SHA-256 (0.17 s of CPU for 230 MB).
"""

import contextlib
import errno
import hashlib
import http.client
import mmap
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Protocol, cast

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from cairn.storage.digest import FileEntry, Manifest
from cairn.storage.errors import ArtifactError, InvalidArtifactURI
from cairn.storage.s3 import S3Client, client, failure
from cairn.storage.store import LocalStore
from cairn.storage.uri import ArtifactURI

MiB = 1 << 20
# Uploads: parts of 16 MiB, 8 at a time (a 200 MB model goes in 13 parts; a stream of unknown
# size can have 10,000 parts, so up to 160 GB).
UPLOAD = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=8
)
# Downloads: ranged GETs of 8 MiB parts, 8 at a time, each read 1 MiB at a time straight into
# the file (s3transfer's machinery and its 256 KiB reads cost about a third more CPU per byte,
# which on a busy node is time). Smaller parts leave less to hash once the last byte has arrived:
# what was written ahead of the hashed front, at most 7 parts.
PART = 8 * MiB
PARTS_AT_ONCE = 8
READ = MiB
# Reads of a part that broke off mid-body, each resuming where the last stopped (the client
# itself retries requests that fail before the body).
PART_ATTEMPTS = 3
STREAM_ERRORS = (
    ReadTimeoutError,
    ResponseStreamingError,
    IncompleteReadError,
    ConnectionClosedError,
)
# download_object's single objects go through s3transfer, in the same parts.
DOWNLOAD = TransferConfig(
    multipart_threshold=PART,
    multipart_chunksize=PART,
    max_concurrency=PARTS_AT_ONCE,
    io_chunksize=READ,
)
# What the hashing thread hashes at a time.
HASH_CHUNK = 4 * MiB
STORE_ERRORS = (BotoCoreError, ClientError)


class _HashingReader:
    """A file read once, front to back, hashed on the way (not seekable: s3transfer then reads
    it in order and keeps each part in memory until it is sent, so retries resend the same
    bytes)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class _Extents:
    """The byte ranges of a file written so far: the contiguous prefix up to `front`, and the
    disjoint ranges written beyond it (a few: one per part downloading ahead)."""

    def __init__(self) -> None:
        self.front = 0
        self.ahead: list[tuple[int, int]] = []

    def add(self, start: int, end: int) -> bool:
        """Records [start, end); whether it overlaps bytes written before."""
        if start >= end:
            return False
        overlaps = start < self.front or any(start < e and s < end for s, e in self.ahead)
        merged: list[tuple[int, int]] = []
        for s, e in sorted([*self.ahead, (start, end)]):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        while merged and merged[0][0] <= self.front:
            self.front = max(self.front, merged.pop(0)[1])
        self.ahead = merged
        return overlaps


class _HashingWriter:
    """The file a download writes ranged parts into, at their offsets, in any order and from
    several threads. A thread of its own hashes the file front to back as the written prefix
    grows, from a read-only mapping of it (the page cache's bytes, not a copy read back): hashing
    overlaps the download instead of holding up the parts, and what is hashed is what the file
    holds.

    A write over bytes written before (a retried part) may land after they were hashed: the file
    is then hashed again, whole, once complete, so the hash is always the file's."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._size = size
        self._fd = file.fileno()  # opened for reading too: the hasher maps it
        self._map = _mapped(self._fd, size)
        self._view = memoryview(self._map) if self._map is not None else memoryview(b"")
        self.sha256 = hashlib.sha256()
        self._written = _Extents()  # guarded by _changed
        self._changed = threading.Condition()
        self._completing = False
        self._stopped = False
        self._rewritten = False
        self._hashed = 0  # every byte before this offset is hashed (the hasher's)
        self._failure: Exception | None = None
        self._hasher = threading.Thread(target=self._hash_front, name="cairn-hash", daemon=True)
        self._hasher.start()

    @property
    def size(self) -> int:
        return self._hashed

    def write_at(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if offset < 0 or offset + len(view) > self._size:
            end = offset + len(view)
            raise OSError(f"bytes {offset}-{end} are outside the file's {self._size}")
        written = 0
        while written < len(view):
            written += os.pwrite(self._fd, view[written:], offset + written)
        with self._changed:
            self._rewritten |= self._written.add(offset, offset + written)
            self._changed.notify()

    def complete(self, expected_size: int) -> None:
        """Waits for the hashing; checks that the whole file, and nothing else, was written."""
        self._stop(finish=True)
        if self._failure is not None:
            raise self._failure
        if self._written.ahead or self._written.front != expected_size:
            raise OSError(
                f"the download left a gap: {self._written.front} of {expected_size} bytes "
                "contiguous"
            )
        if self._rewritten or self._hashed != expected_size:
            self.sha256 = hashlib.sha256()
            self._hashed = 0
            self._hash_up_to(expected_size)

    def close(self) -> None:
        """Stops the hashing (a failed download: what is left is not hashed) and unmaps the
        file."""
        self._stop(finish=False)
        self._view.release()
        if self._map is not None:
            with contextlib.suppress(BufferError):
                # A failed hash's traceback may still hold a view of the mapping: it is then
                # unmapped when that goes.
                self._map.close()

    def __enter__(self) -> "_HashingWriter":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _stop(self, *, finish: bool) -> None:
        with self._changed:
            self._completing = True
            self._stopped = self._stopped or not finish
            self._changed.notify()
        self._hasher.join()

    def _hash_front(self) -> None:
        try:
            while (front := self._next_front()) is not None:
                self._hash_up_to(front)
        except Exception as error:  # told by complete(), on the download's thread
            self._failure = error

    def _next_front(self) -> int | None:
        """The end of the written prefix once it is beyond what is hashed; None once there is
        nothing more to hash."""
        with self._changed:
            while not self._completing and self._written.front <= self._hashed:
                self._changed.wait()
            if self._stopped or self._written.front <= self._hashed:
                return None
            return self._written.front

    def _hash_up_to(self, end: int) -> None:
        # hashlib releases the GIL over large buffers: this runs alongside the download's
        # threads. A chunk at a time, so that a stop is not kept waiting for a whole file.
        while self._hashed < end:
            step = min(HASH_CHUNK, end - self._hashed)
            self.sha256.update(self._view[self._hashed : self._hashed + step])
            self._hashed += step


def _mapped(fd: int, size: int) -> mmap.mmap | None:
    """The file, grown to `size` with its blocks reserved, mapped for reading; None when empty.
    The reservation makes a full disk fail here, before any byte is downloaded."""
    if not size:
        return None
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, size)  # a file system that cannot reserve: sized only
    return mmap.mmap(fd, size, prot=mmap.PROT_READ)


@dataclass(frozen=True)
class Transferred:
    """What moved: the manifest of its bytes."""

    manifest: Manifest

    @property
    def digest(self) -> str:
        return self.manifest.digest


def object_key(prefix: ArtifactURI, path: str) -> str:
    return "/".join(part for part in (prefix.path, path) if part)


def _s3_prefix(uri: ArtifactURI) -> ArtifactURI:
    if uri.scheme != "s3" or not uri.path:
        raise InvalidArtifactURI(f"{uri} is not an s3://<bucket>/<prefix> artifact location")
    return uri


def upload_directory(
    directory: Path,
    uri: ArtifactURI,
    *,
    last: str | None = None,
    s3: S3Client | None = None,
    environ: Mapping[str, str] | None = None,
) -> Transferred:
    """Upload every file of `directory` under the prefix `uri`; `last` (the metadata file) goes
    last, so a reader that finds it finds every file it lists. Raises ObjectStoreError."""
    prefix = _s3_prefix(uri)
    s3 = s3 or client(environ)
    paths = LocalStore(directory).list_files()
    ordered = sorted(paths, key=lambda path: (path == last, path))
    entries = []
    for path in ordered:
        key = object_key(prefix, path)
        with (directory / path).open("rb") as file:
            reader = _HashingReader(file)
            try:
                s3.upload_fileobj(cast(IO[Any], reader), prefix.bucket or "", key, Config=UPLOAD)
            except STORE_ERRORS as error:
                raise failure(error, "uploading to", f"{prefix}/{path}", environ) from None
        entries.append(FileEntry(path, reader.sha256.hexdigest(), reader.size))
    return Transferred(Manifest(tuple(sorted(entries, key=lambda entry: entry.path))))


def download_files(
    uri: ArtifactURI,
    paths: Iterable[str],
    directory: Path,
    *,
    s3: S3Client | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Transferred:
    """Download the objects `<uri>/<path>` into `directory/<path>`; raises ObjectStoreError,
    or ArtifactError for a path that would leave the directory."""
    prefix = _s3_prefix(uri)
    s3 = s3 or client(environ)
    entries = []
    for path in sorted(set(paths)):
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ArtifactError(f"{path!r} is not a path inside the artifact")
        target = directory.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            sha256, size = _download_object(
                s3, prefix.bucket or "", object_key(prefix, path), target, progress
            )
        except STORE_ERRORS as error:
            raise failure(error, "downloading", f"{prefix}/{path}", environ) from None
        entries.append(FileEntry(path, sha256, size))
    return Transferred(Manifest(tuple(entries)))


def _download_object(
    s3: S3Client, bucket: str, key: str, target: Path, progress: Callable[[int], Any] | None
) -> tuple[str, int]:
    """Download one object into `target`, in parts at once; its sha256 (hex) and size."""
    head = _head(s3, bucket, key)
    size, etag = int(head["ContentLength"]), str(head["ETag"])
    spans = [(start, min(start + PART, size)) for start in range(0, size, PART)]
    # w+b: the writer maps the file to hash it.
    with target.open("w+b") as file, _HashingWriter(file, size) as writer:
        ranges = _Ranges(s3, bucket, key, etag, writer, progress)
        if len(spans) == 1:
            ranges.fetch(spans[0])
        elif spans:
            with ThreadPoolExecutor(min(PARTS_AT_ONCE, len(spans)), "cairn-download") as pool:
                for done in [pool.submit(ranges.fetch, span) for span in spans]:
                    done.result()  # the first failure; the other parts then stop early
        writer.complete(size)
    return writer.sha256.hexdigest(), writer.size


def _head(s3: S3Client, bucket: str, key: str) -> Any:
    """The object's HEAD. A HEAD's error has no body to name its cause (a missing bucket and a
    missing key are both a bare 404), so a failed one is asked again as a one-byte GET, whose
    error says which (NoSuchBucket, NoSuchKey, AccessDenied)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"].close()
        raise


@dataclass
class _Ranges:
    """Ranged GETs of one object, all of the same version (If-Match its ETag), into a writer."""

    s3: S3Client
    bucket: str
    key: str
    etag: str
    writer: _HashingWriter
    progress: Callable[[int], Any] | None
    failed: threading.Event = field(default_factory=threading.Event)

    def fetch(self, span: tuple[int, int]) -> None:
        if self.failed.is_set():
            return
        try:
            self._fetch(*span)
        except BaseException:
            self.failed.set()
            raise

    def _fetch(self, position: int, end: int) -> None:
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                for read in self._reads(position, end):
                    position += read
                return
            except STREAM_ERRORS:
                if attempt == PART_ATTEMPTS or self.failed.is_set():
                    raise

    def _reads(self, position: int, end: int) -> Iterator[int]:
        """Bytes [position, end) into the file, a read at a time (stopping early once another
        part failed); a body that breaks off raises one of STREAM_ERRORS."""
        response = self.s3.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={position}-{end - 1}", IfMatch=self.etag
        )
        body = response["Body"]
        buffer = memoryview(bytearray(min(READ, end - position)))
        with contextlib.closing(body):
            socket, release = _socket_reader(body)
            while position < end and not self.failed.is_set():
                try:
                    read = socket.readinto(buffer[: end - position])
                except (OSError, http.client.HTTPException) as error:
                    raise ResponseStreamingError(error=error) from None
                if not read:
                    raise IncompleteReadError(actual_bytes=position, expected_bytes=end)
                self.writer.write_at(position, buffer[:read])
                position += read
                if self.progress is not None:
                    self.progress(read)
                yield read
            if position == end:
                release()


class _Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int: ...


def _socket_reader(body: Any) -> tuple[_Readable, Callable[[], None]]:
    """What reads the body into a buffer with no copy on the way, and what gives its connection
    back to the pool once the body was read to its end. That is the HTTP response under
    botocore's StreamingBody and urllib3's response (each of which reads into a bytes object of
    its own and copies it out: twice the CPU per byte), or the body itself when it is not those
    (another library version, a test's fake). The bytes are the body's as sent: botocore asks
    urllib3 not to decode content, and http.client still undoes a chunked encoding."""
    raw: Any = getattr(body, "_raw_stream", None)
    response = getattr(raw, "_fp", None)
    if isinstance(response, http.client.HTTPResponse) and not getattr(raw, "decode_content", 1):
        return response, raw.release_conn
    return cast(_Readable, body), lambda: None


@dataclass(frozen=True)
class ObjectVersion:
    """What the store says of one object without sending it."""

    etag: str
    version_id: str | None
    size: int

    @property
    def version(self) -> str:
        """The object's VersionId in a versioned bucket, else its ETag: either changes whenever
        the object is written again."""
        return f"versionId {self.version_id}" if self.version_id else f"ETag {self.etag}"


def _s3_object(uri: ArtifactURI) -> ArtifactURI:
    if uri.scheme != "s3" or not uri.path:
        raise InvalidArtifactURI(f"{uri} is not an s3://<bucket>/<key> object")
    return uri


def object_version(
    uri: ArtifactURI, *, s3: S3Client | None = None, environ: Mapping[str, str] | None = None
) -> ObjectVersion:
    """The object's ETag, VersionId and size (a HEAD request); raises ObjectStoreError."""
    found = _s3_object(uri)
    s3 = s3 or client(environ)
    try:
        head = s3.head_object(Bucket=found.bucket or "", Key=found.path)
    except STORE_ERRORS as error:
        raise failure(error, "reading", found, environ) from None
    version_id = head.get("VersionId")
    return ObjectVersion(
        etag=str(head.get("ETag", "")).strip('"'),
        # Unversioned buckets answer "null" (S3) or nothing.
        version_id=version_id if version_id and version_id != "null" else None,
        size=int(head.get("ContentLength", 0)),
    )


def download_object(
    uri: ArtifactURI,
    target: Path,
    *,
    s3: S3Client | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Download one object into the file `target`; raises ObjectStoreError."""
    found = _s3_object(uri)
    s3 = s3 or client(environ)
    try:
        s3.download_file(found.bucket or "", found.path, str(target), Config=DOWNLOAD)
    except STORE_ERRORS as error:
        raise failure(error, "downloading", found, environ) from None
