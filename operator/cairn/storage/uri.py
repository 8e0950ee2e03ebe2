"""Artifact URIs: `pvc://<claim>/<path>`, `file:///<absolute path>`, `s3://<bucket>/<key>`."""

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import quote, unquote

from cairn.storage.errors import InvalidArtifactURI

# A PersistentVolumeClaim name is a DNS-1123 subdomain.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# S3's bucket naming rules (general purpose buckets): 3-63 lowercase letters, digits, '.', '-'.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MAX_CLAIM_LENGTH = 253
# Conservative on purpose: a pvc path becomes a subPath, and Kubernetes object names end up in it.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~+=@,-]+")

_FORMS = "pvc://<claim>/<path>, s3://<bucket>/<key>, or file:///<absolute path> for local use"


@dataclass(frozen=True)
class ArtifactURI:
    """A parsed artifact location.

    For pvc://, `path` is relative to the claim's root ("" is the whole claim); for s3://, it is
    the key (of an object, or the prefix of an artifact's objects) in `bucket`; for file://, it
    is absolute. `str()` gives the canonical URI back.
    """

    scheme: Literal["pvc", "file", "s3"]
    claim: str | None
    path: str
    bucket: str | None = None

    def __str__(self) -> str:
        if self.scheme == "pvc":
            return f"pvc://{self.claim}/{self.path}"
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.path}"
        return f"file://{quote(self.path)}"

    def joinpath(self, *segments: str) -> "ArtifactURI":
        """This location extended by path segments, each validated like the URI's own."""
        for segment in segments:
            _check_segment(segment, str(self))
        if self.scheme in ("pvc", "s3"):
            path = "/".join(part for part in (self.path, *segments) if part)
        else:
            path = str(PurePosixPath(self.path, *segments))
        return ArtifactURI(scheme=self.scheme, claim=self.claim, path=path, bucket=self.bucket)

    @property
    def local_path(self) -> Path:
        """The directory a file:// URI names; pvc:// ones are only reachable where mounted."""
        if self.scheme != "file":
            raise InvalidArtifactURI(
                f"{self} has no local path: a pvc:// artifact is read where the claim is "
                "mounted, an s3:// one is downloaded"
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
        return _parse_s3(uri, rest)
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


def _parse_s3(uri: str, rest: str) -> ArtifactURI:
    bucket, _, key = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidArtifactURI(
            f"{uri!r}: {bucket!r} is not an S3 bucket name; use 3-63 lowercase letters, digits, "
            "'.' and '-', starting and ending with a letter or digit: s3://<bucket>/<key>"
        )
    if key.startswith("/"):
        raise InvalidArtifactURI(
            f"{uri!r}: the key after the bucket must not start with '/'; write s3://{bucket}/"
            f"{key.lstrip('/')}"
        )
    key = key.rstrip("/")
    if key:
        # Keys become file names in the model cache: the same conservative segments as claims.
        for segment in key.split("/"):
            _check_segment(segment, uri)
    return ArtifactURI(scheme="s3", claim=None, path=key, bucket=bucket)


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
