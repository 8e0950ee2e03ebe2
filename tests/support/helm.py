"""The helm binary the chart's tests run: the one `make helm` builds (hack/helm/build.sh), else a
helm ≥ 3.17 on PATH. Missing, the tests fail and say to run `make helm`: never a silent skip."""

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import REPO_ROOT

CHART = REPO_ROOT / "charts/cairn"
# A helm 3 on PATH from 3.17 on will do (`helm install --take-ownership`).
MIN_PATH_MINOR = 17


def _pinned_version() -> str:
    text = (REPO_ROOT / "hack/helm/versions.env").read_text()
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return values["HELM_VERSION"]


@functools.cache
def helm_binary() -> str:
    cache = Path(os.environ.get("CAIRN_CACHE_DIR") or Path.home() / ".cache/cairn")
    built = cache / f"bin/helm-{_pinned_version()}/helm"
    if built.is_file():
        return str(built)
    on_path = shutil.which("helm")
    if on_path:
        version = subprocess.run(
            [on_path, "version", "--template", "{{.Version}}"], capture_output=True, text=True
        ).stdout
        found = re.match(r"v3\.(\d+)\.", version)
        if found and int(found[1]) >= MIN_PATH_MINOR:
            return on_path
    pytest.fail(f"no helm: run `make helm` (builds {built})", pytrace=False)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm; with check, a failure fails the test showing helm's own output."""
    done = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done
