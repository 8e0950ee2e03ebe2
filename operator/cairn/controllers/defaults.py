"""Defaults that a platform team sets once per installation, read from the environment.

The Helm chart sets these variables from its values. They apply only where an object leaves the
field unset: the CRDs carry no default for these fields, because a schema default would be
written into every object by the API server and this one could never apply. Read on every use,
not at import, so that a test can change them with monkeypatch.
"""

import os

from cairn.api.modeldeployment import DEFAULT_SERVER_IMAGE
from cairn.api.trainingrun import DEFAULT_IMAGE as DEFAULT_TRAINER_IMAGE


def trainer_image() -> str:
    """The image of a TrainingRun without spec.image (env CAIRN_TRAINER_IMAGE)."""
    return os.environ.get("CAIRN_TRAINER_IMAGE") or DEFAULT_TRAINER_IMAGE


def server_image() -> str:
    """The image of a ModelDeployment without spec.image (env CAIRN_SERVER_IMAGE)."""
    return os.environ.get("CAIRN_SERVER_IMAGE") or DEFAULT_SERVER_IMAGE
