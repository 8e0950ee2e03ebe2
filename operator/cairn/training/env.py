"""The trainer contract's environment, which the operator sets in the training pod.

Every variable has a default, so training code also runs on a laptop.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cairn.storage import file_uri

RUN = "CAIRN_RUN"
MODEL = "CAIRN_MODEL"
PARAMS = "CAIRN_PARAMS"
DATASET_URI = "CAIRN_DATASET_URI"
OUTPUT_DIR = "CAIRN_OUTPUT_DIR"
OUTPUT_URI = "CAIRN_OUTPUT_URI"
TERMINATION_LOG = "CAIRN_TERMINATION_LOG"

LOCAL_OUTPUT_DIR = Path("cairn-output")
# Where the kubelet reads a container's termination message from, unless the pod says otherwise.
KUBERNETES_TERMINATION_LOG = Path("/dev/termination-log")


@dataclass(frozen=True)
class RunEnv:
    run: str | None
    model: str | None
    params_json: str | None
    dataset_uri: str | None
    output_dir: Path
    output_uri: str
    # None outside Kubernetes: there is no termination message to write.
    termination_log: Path | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "RunEnv":
        output_dir = Path(environ.get(OUTPUT_DIR) or LOCAL_OUTPUT_DIR).absolute()
        return cls(
            run=environ.get(RUN) or None,
            model=environ.get(MODEL) or None,
            params_json=environ.get(PARAMS) or None,
            dataset_uri=environ.get(DATASET_URI) or None,
            output_dir=output_dir,
            output_uri=environ.get(OUTPUT_URI) or file_uri(output_dir),
            termination_log=_termination_log(environ),
        )


def _termination_log(environ: Mapping[str, str]) -> Path | None:
    if configured := environ.get(TERMINATION_LOG):
        return Path(configured)
    # The kubelet creates the file in every container; its absence means we are not in a pod.
    return KUBERNETES_TERMINATION_LOG if KUBERNETES_TERMINATION_LOG.exists() else None
