"""Content digests of artifacts: `sha256:<hex>`, deterministic over the files and their paths.

The digest of an artifact is the sha256 of its manifest: one line `<sha256 hex>  <path>\\n` per
file, sorted by relative POSIX path — the format of `sha256sum`, so a directory can be checked by
hand: `cd DIR && find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum`.
The SDK computes it when it saves a model; the operator and the model server when they verify one.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cairn.storage.errors import DigestMismatch, InvalidDigest
from cairn.storage.store import ArtifactStore, LocalStore

DIGEST_PREFIX = "sha256:"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str  # hex, without the prefix
    size: int


@dataclass(frozen=True)
class Manifest:
    """The files of an artifact, sorted by path, with their sha256 and size."""

    entries: tuple[FileEntry, ...]

    @property
    def digest(self) -> str:
        lines = "".join(f"{entry.sha256}  {entry.path}\n" for entry in self.entries)
        return DIGEST_PREFIX + hashlib.sha256(lines.encode()).hexdigest()

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.entries)

    def sha256_by_path(self) -> dict[str, str]:
        return {entry.path: entry.sha256 for entry in self.entries}


def manifest_of(store: ArtifactStore) -> Manifest:
    return Manifest(entries=tuple(_file_entry(store, path) for path in sorted(store.list_files())))


def _file_entry(store: ArtifactStore, path: str) -> FileEntry:
    sha256 = hashlib.sha256()
    size = 0
    with store.open(path) as file:
        while chunk := file.read(_CHUNK):
            sha256.update(chunk)
            size += len(chunk)
    return FileEntry(path=path, sha256=sha256.hexdigest(), size=size)


def directory_manifest(directory: Path) -> Manifest:
    return manifest_of(LocalStore(directory))


def directory_digest(directory: Path) -> str:
    return directory_manifest(directory).digest


def file_sha256s(directory: Path) -> dict[str, str]:
    """sha256 (hex) of every file under `directory`, by relative POSIX path."""
    return directory_manifest(directory).sha256_by_path()


def check_digest_syntax(digest: str) -> str:
    """`digest` itself, once it is known to be of the form sha256:<64 lowercase hex digits>."""
    if not _DIGEST.fullmatch(digest):
        raise InvalidDigest(f"{digest!r} is not a digest: write sha256:<64 lowercase hex digits>")
    return digest


def verify_digest(directory: Path, expected: str) -> Manifest:
    """The directory's manifest, once its digest is `expected`; DigestMismatch otherwise."""
    check_digest_syntax(expected)
    manifest = directory_manifest(directory)
    if manifest.digest != expected:
        raise DigestMismatch(
            f"artifact {directory} has digest {manifest.digest}, expected {expected}: its files "
            "changed after the digest was recorded, or the wrong directory is mounted"
        )
    return manifest
