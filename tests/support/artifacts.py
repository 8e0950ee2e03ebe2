"""A test namespace's artifact store on the local cluster: claim `cairn-artifacts`, bound to a
directory of this machine that the test can read to check what training wrote."""

import subprocess
from pathlib import Path

from tests.support.cluster import REPO_ROOT

SCRIPT = REPO_ROOT / "hack/localkube/artifacts-claim.sh"


def create_artifacts_claim(namespace: str) -> Path:
    out = subprocess.run([str(SCRIPT), namespace], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def delete_artifacts_claim(namespace: str) -> None:
    subprocess.run([str(SCRIPT), "--delete", namespace], check=True)
