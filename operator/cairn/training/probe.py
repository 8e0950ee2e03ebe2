"""The dataset probe: the short pod a ContinuousTraining runs to measure its dataset's digest.

    python -m cairn.training.probe

It reads the dataset the way training does (CAIRN_DATASET_URI, from CAIRN_DATASET_PATH where the
operator mounted it), so the digest is the one a run records in its ModelVersion, and leaves
`{"digest": "sha256:...", "rows": N}` in the container's termination message, or
`{"error": "..."}` and exit code 1 when the dataset cannot be read.

An s3:// dataset is not downloaded: the store's VersionId (versioned buckets) or ETag of the
object says whether it changed, and the probe reports `{"digest": ..., "version": "ETag ..."}`
with a digest of that identity (see object_digest), which changes exactly when it does.
"""

import hashlib
import json
import os
import sys

from cairn.training.datasets import DatasetError, load_dataset
from cairn.training.env import RunEnv


def measure(env: RunEnv) -> dict[str, object]:
    if not env.dataset_uri:
        raise DatasetError("CAIRN_DATASET_URI is not set: the probe has no dataset to measure")
    if env.dataset_uri.startswith("s3://"):
        return measure_object(env.dataset_uri)
    data = load_dataset(env.dataset_uri, env.dataset_path)
    return {"digest": data.digest, "rows": len(data.y)}


def object_digest(uri: str, version: str) -> str:
    """sha256 of an object's identity: its URI and its VersionId or ETag."""
    return "sha256:" + hashlib.sha256(f"{uri}\n{version}".encode()).hexdigest()


def measure_object(uri: str) -> dict[str, object]:
    """The object's version without downloading it (boto3: only for s3:// datasets)."""
    from cairn.storage import InvalidArtifactURI, parse_artifact_uri
    from cairn.storage.s3 import ObjectStoreError
    from cairn.storage.transfer import object_version

    try:
        found = object_version(parse_artifact_uri(uri))
    except (InvalidArtifactURI, ObjectStoreError) as error:
        raise DatasetError(str(error)) from None
    return {"digest": object_digest(uri, found.version), "version": found.version}


def main() -> int:
    env = RunEnv.from_environ(os.environ)
    try:
        result, code = measure(env), 0
    except DatasetError as error:
        result, code = {"error": str(error)}, 1
    text = json.dumps(result, separators=(",", ":"))
    if env.termination_log is not None:
        env.termination_log.write_text(text)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
