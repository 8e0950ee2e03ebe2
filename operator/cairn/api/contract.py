"""The trainer contract (DESIGN §3): the environment the operator gives a training pod, and the
trainer SDK (cairn.training) reads. Defined once, here, for both sides."""

from typing import Final

RUN: Final = "CAIRN_RUN"
MODEL: Final = "CAIRN_MODEL"
PARAMS: Final = "CAIRN_PARAMS"  # JSON
DATASET_URI: Final = "CAIRN_DATASET_URI"
# Where the dataset is inside the pod, when the operator mounted it (a pvc:// or file:// URI).
DATASET_PATH: Final = "CAIRN_DATASET_PATH"
OUTPUT_DIR: Final = "CAIRN_OUTPUT_DIR"
OUTPUT_URI: Final = "CAIRN_OUTPUT_URI"
TERMINATION_LOG: Final = "CAIRN_TERMINATION_LOG"
# The version holding the Model's promotion alias when the run started, mounted read-only.
CHAMPION_DIR: Final = "CAIRN_CHAMPION_DIR"
CHAMPION_VERSION: Final = "CAIRN_CHAMPION_VERSION"
CHAMPION_DIGEST: Final = "CAIRN_CHAMPION_DIGEST"
# An s3:// champion is not mounted: the SDK downloads it from here (and verifies its digest).
CHAMPION_URI: Final = "CAIRN_CHAMPION_URI"
