"""Model directories on an object store: the SDK uploads what save_model wrote, the model server
and `champion()` download one.

A download reads the metadata file first and then exactly the files it lists: anything else
under the prefix (an earlier run's leftovers) is never fetched, and a metadata file that lists
other files than the ones recorded makes the digest differ, so it is refused all the same.
"""

from collections.abc import Mapping
from pathlib import Path

from cairn.storage import DigestMismatch, Manifest, parse_artifact_uri
from cairn.storage.s3 import S3Client, client
from cairn.storage.transfer import Transferred, download_files, upload_directory
from cairn.training.model_dir import METADATA_FILE, read_metadata

# The reason a run fails with when its model cannot be uploaded (the operator's vocabulary).
UPLOAD_FAILED = "ArtifactUploadFailed"


def upload_model(
    directory: Path, uri: str, environ: Mapping[str, str] | None = None
) -> Transferred:
    """Upload a model directory to `uri` (s3://<bucket>/<prefix>), the metadata file last."""
    return upload_directory(directory, parse_artifact_uri(uri), last=METADATA_FILE, environ=environ)


def download_model(
    uri: str,
    directory: Path,
    expected_digest: str,
    *,
    s3: S3Client | None = None,
    environ: Mapping[str, str] | None = None,
) -> Manifest:
    """Download the model at `uri` into the empty `directory` and return its manifest once it
    matches `expected_digest`: DigestMismatch otherwise, ObjectStoreError when the store fails."""
    parsed = parse_artifact_uri(uri)
    s3 = s3 or client(environ)
    metadata = download_files(parsed, [METADATA_FILE], directory, s3=s3, environ=environ)
    listed = read_metadata(directory).files
    files = download_files(parsed, listed, directory, s3=s3, environ=environ)
    manifest = Manifest(
        tuple(sorted(metadata.manifest.entries + files.manifest.entries, key=lambda e: e.path))
    )
    if manifest.digest != expected_digest:
        raise DigestMismatch(
            f"{uri} has digest {manifest.digest}, expected {expected_digest}: its objects "
            "changed after the version was registered"
        )
    return manifest
