"""Reading an artifact's files through one small interface, so that an S3 backend drops in later."""

import os
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from cairn.storage.errors import ArtifactError, InvalidArtifactURI
from cairn.storage.uri import ArtifactURI, parse_artifact_uri


class ArtifactStore(Protocol):
    """The files of one artifact (a model directory), wherever they are stored."""

    def list_files(self) -> list[str]:
        """Relative POSIX paths of every file of the artifact, sorted."""
        ...

    def open(self, path: str) -> BinaryIO:
        """One file of the artifact, by a relative path from list_files, for reading."""
        ...


class LocalStore:
    """An artifact directory on a local or mounted filesystem (file://, or pvc:// in a pod)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list_files(self) -> list[str]:
        if not self.root.is_dir():
            raise ArtifactError(
                f"artifact directory {self.root} does not exist or is not a directory"
            )
        return sorted(self._walk(self.root, PurePosixPath()))

    def _walk(self, directory: Path, relative: PurePosixPath) -> list[str]:
        files: list[str] = []
        with os.scandir(directory) as entries:
            for entry in entries:
                path = relative / entry.name
                # A link could point anywhere and change without the artifact changing.
                if entry.is_symlink():
                    raise ArtifactError(
                        f"{directory / entry.name} is a symbolic link: "
                        "artifact directories hold regular files only"
                    )
                if entry.is_dir():
                    files.extend(self._walk(Path(entry.path), path))
                elif entry.is_file():
                    if "\n" in entry.name:  # the digest's manifest is line-based
                        raise ArtifactError(f"{entry.path!r}: file names must not hold newlines")
                    files.append(str(path))
                else:
                    raise ArtifactError(f"{entry.path} is not a regular file or directory")
        return files

    def open(self, path: str) -> BinaryIO:
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts:
            raise ArtifactError(f"{path!r} is not a path inside the artifact")
        return (self.root / relative).open("rb")


def open_store(uri: ArtifactURI | str, *, mounted_at: Path | None = None) -> ArtifactStore:
    """The store of an artifact URI. A pvc:// artifact is read where a pod mounted it."""
    parsed = parse_artifact_uri(uri) if isinstance(uri, str) else uri
    if parsed.scheme == "file":
        return LocalStore(parsed.local_path)
    if mounted_at is None:
        raise InvalidArtifactURI(
            f"{parsed} is read where its claim is mounted: pass mounted_at=<the mount path>"
        )
    return LocalStore(mounted_at)
