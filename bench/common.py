"""What the cluster benchmarks share: the operator as its own process, a namespace of their own,
the CRDs, and how they summarise what they measured."""

import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client

CRDS = Path(__file__).resolve().parents[1] / "crds"
ARTIFACTS_CLAIM = Path(__file__).resolve().parents[1] / "hack/localkube/artifacts-claim.sh"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def peak_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int) -> float:
    """The resident memory now (peak_rss_mib: the most it has been)."""
    return _status_mib(pid, "VmRSS")


def start_operator(
    namespace: str,
    log: Path,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`cairn-operator` (or `command`, the same program run another way) watching `namespace`,
    on free local ports, once it is healthy."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(command or ["cairn-operator"]),
                *("-n", namespace),
                *("--health-addr", f"127.0.0.1:{port}"),
                *("--metrics-addr", f"127.0.0.1:{free_port()}"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the operator did not become healthy; see {log}")


def apply_crds(directory: Path = CRDS) -> None:
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(directory)],
        check=True,
        capture_output=True,
    )


BENCH_LABEL = "cairn.dev/bench"
EARLIER_DELETION_SECONDS = 600


def wait_for_earlier_benchmarks(core: Any) -> None:
    """Wait while an earlier benchmark's namespace is still being deleted: its thousands of
    objects going away keep the API server and etcd busy for minutes, and a benchmark started
    meanwhile measures that as well as itself."""
    deadline = time.monotonic() + EARLIER_DELETION_SECONDS
    said = False
    while time.monotonic() < deadline:
        listed = core.list_namespace(label_selector=f"{BENCH_LABEL}=1")
        deleting = [ns.metadata.name for ns in listed.items if ns.metadata.deletion_timestamp]
        if not deleting:
            return
        if not said:
            print(f"waiting for earlier benchmark namespaces to be deleted: {', '.join(deleting)}")
            said = True
        time.sleep(2)
    print("earlier benchmark namespaces are still being deleted; measuring beside them")


def bench_namespace(core: Any, prefix: str) -> str:
    """A new namespace `<prefix>-<random>`, labelled as a benchmark's, once no earlier one is
    still being deleted."""
    wait_for_earlier_benchmarks(core)
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels={BENCH_LABEL: "1"}))
    )
    return namespace


def claim_artifacts(namespace: str) -> None:
    """The namespace's cairn-artifacts claim, bound to a volume of the local cluster."""
    subprocess.run([str(ARTIFACTS_CLAIM), namespace], check=True, stdout=subprocess.DEVNULL)


def delete_with_artifacts(core: Any, namespace: str) -> None:
    """Delete the namespace and the volume its artifacts claim was bound to."""
    core.delete_namespace(namespace)
    subprocess.run([str(ARTIFACTS_CLAIM), "--delete", namespace], check=False)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the operator, kwok, ...), then SIGKILL if it has not stopped within 30 s; never
    leaves it running."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
