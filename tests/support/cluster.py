"""Finding the real cluster the integration tests run against, starting the local one if need be.

Order: $KUBECONFIG when its cluster answers; else the local cluster of hack/localkube when it
answers; else `make cluster-up` starts that one (unless CAIRN_TEST_START_CLUSTER=0). kind is not
wired in: on a machine with Docker, create a kind cluster and point $KUBECONFIG at it.
"""

import dataclasses
import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[2]
# A first `make cluster-up` builds Kubernetes, etcd and containerd from source.
CLUSTER_UP_TIMEOUT = 60 * 60
PROBE_TIMEOUT = 5


@dataclasses.dataclass(frozen=True)
class Cluster:
    kubeconfig: str  # a path, or several joined as in $KUBECONFIG


class ClusterUnavailable(Exception):
    """No cluster could be reached or started; the message says what was tried."""


def localkube_kubeconfig() -> Path:
    state_dir = os.environ.get("CAIRN_LOCALKUBE_DIR") or Path.home() / ".cache/cairn/localkube"
    return Path(state_dir) / "kubeconfig"


def is_localkube(kubeconfig: str) -> bool:
    """Whether `kubeconfig` is hack/localkube's, however it is named."""
    ours = localkube_kubeconfig()
    return ours.exists() and any(
        path.exists() and path.samefile(ours)
        for path in (Path(p) for p in kubeconfig.split(os.pathsep) if p)
    )


def probe(kubeconfig: str) -> str | None:
    """Return why the cluster of `kubeconfig` cannot be used, or None when its API answers."""
    paths = [Path(p) for p in kubeconfig.split(os.pathsep) if p]
    if not any(path.is_file() for path in paths):
        return f"{kubeconfig} does not exist"
    try:
        with config.new_client_from_config(config_file=kubeconfig) as api_client:
            client.VersionApi(api_client).get_code(_request_timeout=PROBE_TIMEOUT)
    # Whatever goes wrong (bad file, refused connection, TLS, auth), the cluster is unusable,
    # and the message is all the user needs.
    except Exception as error:
        return f"{kubeconfig}: {type(error).__name__}: {error}"
    return None


@contextmanager
def _exclusive(lock_name: str) -> Iterator[None]:
    # pytest-xdist workers each look for the cluster; only one may start it.
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _start_local_cluster() -> str | None:
    """Run `make cluster-up`, its output going to the terminal; return why it failed, if it did."""
    try:
        subprocess.run(
            ["make", "-C", str(REPO_ROOT), "cluster-up"],
            check=True,
            stdin=subprocess.DEVNULL,
            timeout=CLUSTER_UP_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"`make -C {REPO_ROOT} cluster-up` failed: {error}"
    return None


def find_or_start_cluster() -> str:
    """Return the kubeconfig of a cluster that answers, or raise ClusterUnavailable."""
    tried: list[str] = []
    from_env = os.environ.get("KUBECONFIG")
    if from_env:
        reason = probe(from_env)
        if reason is None:
            return from_env
        tried.append(f"$KUBECONFIG: {reason}")

    local = str(localkube_kubeconfig())
    with _exclusive("cairn-test-cluster-up.lock"):
        # Probed under the lock: another pytest worker may just have started it.
        reason = probe(local)
        if reason is None:
            return local
        tried.append(f"local cluster: {reason}")
        if os.environ.get("CAIRN_TEST_START_CLUSTER", "1") == "0":
            tried.append("not starting it, because CAIRN_TEST_START_CLUSTER=0")
        else:
            reason = _start_local_cluster() or probe(local)
            if reason is None:
                return local
            tried.append(f"after starting it: {reason}")
    raise ClusterUnavailable(
        "No Kubernetes cluster for the integration tests.\n  "
        + "\n  ".join(tried)
        + "\nStart one with `make cluster-up` or point $KUBECONFIG at one; "
        "`pytest -m unit` runs only the tests that need none."
    )
