"""Artifact URIs: `pvc://<claim>/<path>`, `file:///<absolute path>`; `s3://` is recognised only."""

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import quote, unquote

from cairn.storage.errors import InvalidArtifactURI, UnsupportedArtifactStore

# A PersistentVolumeClaim name is a DNS-1123 subdomain.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_CLAIM_LENGTH = 253
# Conservative on purpose: a pvc path becomes a subPath, and Kubernetes object names end up in it.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~+=@,-]+")

_FORMS = "pvc://<claim>/<path>, or file:///<absolute path> for local use"


@dataclass(frozen=True)
class ArtifactURI:
    """A parsed artifact location.

    For pvc://, `path` is relative to the claim's root ("" is the whole claim); for file://, it
    is absolute. `str()` gives the canonical URI back.
    """

    scheme: Literal["pvc", "file"]
    claim: str | None
    path: str

    def __str__(self) -> str:
        if self.scheme == "pvc":
            return f"pvc://{self.claim}/{self.path}"
        return f"file://{quote(self.path)}"

    def joinpath(self, *segments: str) -> "ArtifactURI":
        """This location extended by path segments, each validated like the URI's own."""
        for segment in segments:
            _check_segment(segment, str(self))
        if self.scheme == "pvc":
            path = "/".join(part for part in (self.path, *segments) if part)
        else:
            path = str(PurePosixPath(self.path, *segments))
        return ArtifactURI(scheme=self.scheme, claim=self.claim, path=path)

    @property
    def local_path(self) -> Path:
        """The directory a file:// URI names; pvc:// ones are only reachable where mounted."""
        if self.scheme != "file":
            raise InvalidArtifactURI(
                f"{self} has no local path: a pvc:// artifact is read where the claim is mounted"
            )
        return Path(self.path)


def parse_artifact_uri(uri: str) -> ArtifactURI:
    """Parse and validate an artifact URI; InvalidArtifactURI says what is wrong and the fix."""
    scheme, separator, rest = uri.partition("://")
    if not separator:
        raise InvalidArtifactURI(f"{uri!r} is not an artifact URI: write {_FORMS}")
    scheme = scheme.lower()
    if "?" in rest or "#" in rest:
        raise InvalidArtifactURI(
            f"{uri!r} has a query or fragment ('?' or '#'): artifact URIs are plain paths"
        )
    if scheme == "pvc":
        return _parse_pvc(uri, rest)
    if scheme == "file":
        return _parse_file(uri, rest)
    if scheme == "s3":
        raise UnsupportedArtifactStore(
            f"{uri!r}: s3:// artifact storage is not supported yet; write {_FORMS}"
        )
    raise InvalidArtifactURI(f"{uri!r} has the unknown scheme {scheme!r}: write {_FORMS}")


def _parse_pvc(uri: str, rest: str) -> ArtifactURI:
    claim, _, path = rest.partition("/")
    if not claim:
        raise InvalidArtifactURI(f"{uri!r} names no claim: write pvc://<claim>/<path>")
    if len(claim) > _MAX_CLAIM_LENGTH or not _DNS1123_SUBDOMAIN.fullmatch(claim):
        raise InvalidArtifactURI(
            f"{uri!r}: {claim!r} is not a PersistentVolumeClaim name; use lowercase letters, "
            f"digits, '-' and '.', starting and ending with a letter or digit "
            f"(at most {_MAX_CLAIM_LENGTH} characters)"
        )
    if path.startswith("/"):
        raise InvalidArtifactURI(
            f"{uri!r}: the path after the claim must be relative; write pvc://{claim}/"
            f"{path.lstrip('/')}"
        )
    path = path.rstrip("/")
    if path:
        for segment in path.split("/"):
            _check_segment(segment, uri)
    return ArtifactURI(scheme="pvc", claim=claim, path=path)


def _check_segment(segment: str, uri: str) -> None:
    if segment == "":
        raise InvalidArtifactURI(f"{uri!r} has an empty path segment: remove the doubled '/'")
    if segment in (".", ".."):
        raise InvalidArtifactURI(
            f"{uri!r}: {segment!r} is not allowed in an artifact path; name the directory directly"
        )
    if not _PATH_SEGMENT.fullmatch(segment):
        raise InvalidArtifactURI(
            f"{uri!r}: path segment {segment!r} may only hold letters, digits and . _ ~ + = @ , -"
        )


def _parse_file(uri: str, rest: str) -> ArtifactURI:
    if not rest.startswith("/"):
        raise InvalidArtifactURI(
            f"{uri!r}: file:// URIs take an absolute path and no host; "
            "write file:///<absolute path> (three slashes)"
        )
    path = unquote(rest)
    if ".." in PurePosixPath(path).parts:
        raise InvalidArtifactURI(f"{uri!r}: '..' is not allowed; write the resolved path")
    return ArtifactURI(scheme="file", claim=None, path=str(PurePosixPath(path)))


def file_uri(path: Path) -> str:
    """The file:// URI of a local path, made absolute."""
    return str(ArtifactURI(scheme="file", claim=None, path=str(path.resolve())))
