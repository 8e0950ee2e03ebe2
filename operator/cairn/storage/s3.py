"""S3 clients configured the ecosystem's way, and the errors of an object store, told safely.

Credentials, region and endpoint come from the standard AWS environment and shared config
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL, AWS_PROFILE, web identity tokens...), which boto3 reads itself: in a pod they
come from the Secret the TrainingRun or ModelDeployment names, or from workload identity. An
endpoint of its own means an S3-compatible server (SeaweedFS, MinIO, Ceph): those are addressed
path-style and sent only the checksums S3 requires.

Every failure becomes an ObjectStoreError whose message names the store (URI and endpoint) and
its answer, with any credential value of the environment replaced: messages end up in statuses,
Events and logs.
"""

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.loaders import Loader

from cairn.storage.errors import StorageError
from cairn.storage.uri import ArtifactURI

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = object

__all__ = ["ObjectStoreError", "S3Client", "client", "endpoint_of", "failure", "redact"]

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# Values that must never be shown, whatever an error message quotes.
CREDENTIAL_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
REDACTED = "<redacted>"
DEFAULT_ENDPOINT = "AWS S3"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
# What to tell a person for the store's answers that have a usual cause.
_HINTS = {
    "NoSuchBucket": "the bucket does not exist: create it, or fix the URI",
    "NoSuchKey": "there is no such object: fix the URI, or write the object first",
    "404": "there is no such object: fix the URI, or write the object first",
    "InvalidAccessKeyId": "the access key is not known to the store: fix AWS_ACCESS_KEY_ID in "
    "the Secret named by spec.storage.secretName (default cairn-storage)",
    "SignatureDoesNotMatch": "the secret key does not match the access key: fix "
    "AWS_SECRET_ACCESS_KEY in the Secret named by spec.storage.secretName (default cairn-storage)",
    "AccessDenied": "the credentials may not do this: grant them access to the bucket, or fix "
    "the Secret named by spec.storage.secretName (default cairn-storage)",
    "403": "the credentials may not do this: grant them access to the bucket, or fix the "
    "Secret named by spec.storage.secretName (default cairn-storage)",
}


class ObjectStoreError(StorageError):
    """An object store that failed a request or could not be reached. `code` is the store's
    error code (NoSuchBucket, AccessDenied, ...) or the kind of failure (EndpointUnreachable,
    NoCredentials)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def endpoint_of(environ: Mapping[str, str] | None = None) -> str | None:
    """The S3-compatible endpoint the environment configures; None for AWS itself."""
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)


def client(environ: Mapping[str, str] | None = None) -> S3Client:
    """An S3 client from the standard AWS configuration (boto3's own lookup)."""
    endpoint = endpoint_of(environ)
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": 3},
    )
    if endpoint is not None:
        # Virtual-host addressing needs a DNS name per bucket, which such servers rarely have;
        # and many implement only the checksums S3 required before 2025.
        config = config.merge(
            Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
        )
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    session = boto3.session.Session(botocore_session=core)
    made: S3Client = session.client("s3", endpoint_url=endpoint, config=config)
    return made


class _SearchPaths(list[str]):
    """boto3 adds its data directory to the loader of every session it makes: once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _loader() -> Loader:
    """One loader of botocore's service descriptions for every client: parsing them again is
    most of what making a client costs (~70 ms of ~80). Sessions stay one per client, so
    credentials are still looked up each time."""
    paths = botocore.session.get_session().get_component("data_loader").search_paths
    return Loader(extra_search_paths=_SearchPaths(paths), include_default_search_paths=False)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with the value of every credential variable of the environment replaced."""
    environ = os.environ if environ is None else environ
    for name in CREDENTIAL_VARIABLES:
        value = environ.get(name) or ""
        if len(value) >= 4:  # a shorter value would match by chance
            text = text.replace(value, REDACTED)
    return text


def failure(
    error: Exception, doing: str, uri: ArtifactURI | str, environ: Mapping[str, str] | None = None
) -> ObjectStoreError:
    """The ObjectStoreError that says what `doing` to `uri` met: the store's code and message,
    the endpoint, and the usual fix."""
    store = f"{uri} at {endpoint_of(environ) or DEFAULT_ENDPOINT}"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(details.get("Code") or status or "Error")
        said = str(details.get("Message") or "").strip()
        text = f"{code} ({said})" if said else f"{code} (HTTP {status})"
        hint = _HINTS.get(code)
    elif isinstance(error, ConnectionError):
        code, text = "EndpointUnreachable", f"cannot connect: {error}"
        hint = "check AWS_ENDPOINT_URL_S3 and that the store is up and reachable from the pod"
    elif isinstance(error, NoCredentialsError | PartialCredentialsError):
        code, text = "NoCredentials", str(error)
        hint = (
            "give the pod AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a Secret named by "
            "spec.storage.secretName, default cairn-storage) or a workload identity"
        )
    elif isinstance(error, BotoCoreError):
        code, text, hint = type(error).__name__, str(error), None
    else:
        code, text, hint = type(error).__name__, str(error), None
    message = f"{doing} {store} failed: {text}" + (f"; {hint}" if hint else "")
    return ObjectStoreError(redact(message, environ), code)
