"""The dataset probe: the short pod a ContinuousTraining runs to measure its dataset's digest.

    python -m cairn.training.probe

It reads the dataset the way training does (CAIRN_DATASET_URI, from CAIRN_DATASET_PATH where the
operator mounted it), so the digest is the one a run records in its ModelVersion, and leaves
`{"digest": "sha256:...", "rows": N}` in the container's termination message, or
`{"error": "..."}` and exit code 1 when the dataset cannot be read.
"""

import json
import os
import sys

from cairn.training.datasets import DatasetError, load_dataset
from cairn.training.env import RunEnv


def measure(env: RunEnv) -> dict[str, object]:
    if not env.dataset_uri:
        raise DatasetError("CAIRN_DATASET_URI is not set: the probe has no dataset to measure")
    data = load_dataset(env.dataset_uri, env.dataset_path)
    return {"digest": data.digest, "rows": len(data.y)}


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
