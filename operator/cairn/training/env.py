"""The trainer contract's environment (cairn.api.contract), which the operator sets in the
training pod.

Every variable has a default, so training code also runs on a laptop.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cairn.api.contract import (
    CHAMPION_DIGEST,
    CHAMPION_DIR,
    CHAMPION_URI,
    CHAMPION_VERSION,
    DATASET_PATH,
    DATASET_URI,
    MODEL,
    OUTPUT_DIR,
    OUTPUT_URI,
    PARAMS,
    RUN,
    TERMINATION_LOG,
)
from cairn.storage import file_uri

LOCAL_OUTPUT_DIR = Path("cairn-output")
# Where the kubelet reads a container's termination message from, unless the pod says otherwise.
KUBERNETES_TERMINATION_LOG = Path("/dev/termination-log")


@dataclass(frozen=True)
class Champion:
    """The model to beat: the version holding the Model's promotion alias, as the operator
    mounted it (`directory`), or where to download it from (`uri`, an s3:// one)."""

    version: int
    directory: Path | None
    digest: str
    uri: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Champion | None":
        if not environ.get(CHAMPION_DIR) and not environ.get(CHAMPION_URI):
            return None
        return cls(
            version=int(environ[CHAMPION_VERSION]),
            directory=Path(environ[CHAMPION_DIR]) if environ.get(CHAMPION_DIR) else None,
            digest=environ[CHAMPION_DIGEST],
            uri=environ.get(CHAMPION_URI) or None,
        )


@dataclass(frozen=True)
class RunEnv:
    run: str | None
    model: str | None
    params_json: str | None
    dataset_uri: str | None
    dataset_path: Path | None
    output_dir: Path
    output_uri: str
    # None outside Kubernetes: there is no termination message to write.
    termination_log: Path | None
    champion: "Champion | None" = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "RunEnv":
        output_dir = Path(environ.get(OUTPUT_DIR) or LOCAL_OUTPUT_DIR).absolute()
        return cls(
            run=environ.get(RUN) or None,
            model=environ.get(MODEL) or None,
            params_json=environ.get(PARAMS) or None,
            dataset_uri=environ.get(DATASET_URI) or None,
            dataset_path=Path(environ[DATASET_PATH]) if environ.get(DATASET_PATH) else None,
            output_dir=output_dir,
            output_uri=environ.get(OUTPUT_URI) or file_uri(output_dir),
            termination_log=_termination_log(environ),
            champion=Champion.from_environ(environ),
        )


def _termination_log(environ: Mapping[str, str]) -> Path | None:
    if configured := environ.get(TERMINATION_LOG):
        return Path(configured)
    # The kubelet creates the file in every container; its absence means we are not in a pod.
    return KUBERNETES_TERMINATION_LOG if KUBERNETES_TERMINATION_LOG.exists() else None


__all__ = [
    "CHAMPION_DIGEST",
    "CHAMPION_DIR",
    "CHAMPION_URI",
    "CHAMPION_VERSION",
    "DATASET_PATH",
    "DATASET_URI",
    "KUBERNETES_TERMINATION_LOG",
    "LOCAL_OUTPUT_DIR",
    "MODEL",
    "OUTPUT_DIR",
    "OUTPUT_URI",
    "PARAMS",
    "RUN",
    "TERMINATION_LOG",
    "Champion",
    "RunEnv",
]
