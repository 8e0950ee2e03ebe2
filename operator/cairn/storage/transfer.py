"""Moving an artifact directory to and from an s3:// prefix, hashing the bytes as they move.

An artifact's objects are `<prefix>/<relative path>`, one per file. An upload reports the
manifest (cairn.storage.digest) of the bytes it sent, so the digest a run records is the digest of
what the store has; a download hashes what it receives, so a directory is known to match its
digest the moment it is written, without reading it again.

Large files go in parts (multipart upload, ranged downloads), several at a time; downloaded
parts are written at their offsets as they arrive.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from cairn.storage.digest import FileEntry, Manifest
from cairn.storage.errors import ArtifactError, InvalidArtifactURI
from cairn.storage.s3 import S3Client, client, failure
from cairn.storage.store import LocalStore
from cairn.storage.uri import ArtifactURI

MiB = 1 << 20
# Parts of 16 MiB, 8 at a time: a 200 MB model moves in 13 parts.
TRANSFER = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=8
)
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


class _HashingWriter:
    """A file that s3transfer writes ranged parts into, at their offsets and in any order (it is
    seekable, so parts go straight to the file, several downloading at once), hashed front to
    back as the written prefix grows: bytes written at the front are hashed as they come, and a
    part that arrived early is read back (from the page cache) once the front reaches it.

    (A non-seekable writer would make s3transfer hold early parts in memory and, with s3transfer
    0.17, can deadlock once more parts wait than its in-memory limit allows.)"""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.sha256 = hashlib.sha256()
        self._position = 0
        self._hashed = 0  # every byte before this offset is written and hashed
        self._ahead: dict[int, int] = {}  # written beyond the front: start -> end

    @property
    def size(self) -> int:
        return self._hashed

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("only absolute seeks are supported")
        self._position = offset
        return offset

    def write(self, data: bytes) -> int:
        start = self._position
        self._file.seek(start)
        written = self._file.write(data)
        end = start + written
        self._position = end
        if start <= self._hashed < end:
            self.sha256.update(memoryview(data)[self._hashed - start : written])
            self._hashed = end
            self._catch_up()
        elif start > self._hashed:
            self._ahead[start] = max(end, self._ahead.get(start, end))
        return written

    def _catch_up(self) -> None:
        """Hash the parts written ahead that the front now reaches."""
        while True:
            reached = [start for start in self._ahead if start <= self._hashed]
            if not reached:
                return
            end = max(self._ahead.pop(start) for start in reached)
            if end <= self._hashed:
                continue
            self._file.flush()
            self._file.seek(self._hashed)
            remaining = end - self._hashed
            while remaining:
                chunk = self._file.read(min(remaining, 1 << 20))
                if not chunk:
                    raise OSError(f"{self._hashed}: written bytes cannot be read back")
                self.sha256.update(chunk)
                self._hashed += len(chunk)
                remaining -= len(chunk)

    def complete(self, expected_size: int) -> None:
        """Checks that the whole file, and nothing else, was written."""
        if self._ahead or self._hashed != expected_size:
            raise OSError(
                f"the download left a gap: {self._hashed} of {expected_size} bytes contiguous"
            )


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
                s3.upload_fileobj(cast(IO[Any], reader), prefix.bucket or "", key, Config=TRANSFER)
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
        # w+b: the writer reads back parts that arrived ahead of the front, to hash them.
        with target.open("w+b") as file:
            writer = _HashingWriter(file)
            try:
                s3.download_fileobj(
                    prefix.bucket or "",
                    object_key(prefix, path),
                    cast(IO[Any], writer),
                    Config=TRANSFER,
                    Callback=progress,
                )
            except STORE_ERRORS as error:
                raise failure(error, "downloading", f"{prefix}/{path}", environ) from None
            file.seek(0, 2)
            writer.complete(file.tell())
        entries.append(FileEntry(path, writer.sha256.hexdigest(), writer.size))
    return Transferred(Manifest(tuple(entries)))


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
        s3.download_file(found.bucket or "", found.path, str(target), Config=TRANSFER)
    except STORE_ERRORS as error:
        raise failure(error, "downloading", found, environ) from None
