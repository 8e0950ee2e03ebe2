"""Running the Cairn controllers in-process under kopf, as the `operator` fixture does."""

import dataclasses
import os
import random
import signal
import socket
import subprocess
from pathlib import Path

from kopf.testing import KopfRunner

from tests.support.http import get_or_none
from tests.support.wait import wait_for

STARTUP_TIMEOUT = 60
STOP_TIMEOUT = 30
# The operator's startup reads its metrics address from here under `kopf run`.
METRICS_ENV = "CAIRN_METRICS_ADDR"


@dataclasses.dataclass(frozen=True)
class RunningOperator:
    namespace: str
    health_url: str
    metrics_url: str
    runner: KopfRunner | None  # None: the chart's in-cluster operator


# Ports handed out below the kernel's ephemeral range, so that between the probe and the bind no
# outgoing connection (the tests make thousands) can take one as its own end; the ephemeral
# range's bottom is read from the kernel, and this is where the search starts below it.
LOCAL_PORTS_FLOOR = 20000
_ports_given: set[int] = set()


def ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_local_port() -> int:
    """A loopback port free now, outside the ephemeral range and not given before."""
    candidates = list(range(LOCAL_PORTS_FLOOR, ephemeral_ports_start()))
    random.shuffle(candidates)
    for port in candidates:
        if port in _ports_given:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {LOCAL_PORTS_FLOOR}-{ephemeral_ports_start()}")


def kopf_run_args(namespace: str, health_url: str) -> list[str]:
    """`kopf run` arguments for the real controllers, watching one namespace only."""
    return [
        "run",
        "--standalone",
        "--namespace",
        namespace,
        "--liveness",
        health_url,
        "--verbose",
        "-m",
        "cairn.controllers",
    ]


def wait_until_healthy(operator: RunningOperator) -> None:
    def healthy() -> bool:
        if operator.runner is not None and operator.runner.future.done():
            # The operator already exited: waiting longer cannot help, its output says why.
            raise AssertionError(f"the operator exited during startup:\n{operator.runner.output}")
        response = get_or_none(operator.health_url)
        return response is not None and response.status_code == 200

    wait_for(healthy, timeout=STARTUP_TIMEOUT, message=f"{operator.health_url} to answer 200")


class OperatorProcess:
    """`cairn-operator` as users run it, in its own process so that it can be killed."""

    def __init__(self, namespace: str, log: Path) -> None:
        self.namespace, self.log = namespace, log
        self.process: subprocess.Popen[bytes] | None = None
        self.health_url = ""

    def start(self) -> None:
        port = free_local_port()
        self.health_url = f"http://127.0.0.1:{port}/healthz"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["cairn-operator", "-n", self.namespace, "--health-addr", f"127.0.0.1:{port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def wait_until_healthy(self) -> int:
        """Wait until the process answers its health check; returns its pid."""
        process = self.process
        assert process is not None, "start() it first"

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the operator exited {process.returncode}: see {self.log}")
            response = get_or_none(self.health_url)
            return response is not None and response.status_code == 200

        wait_for(healthy, timeout=STARTUP_TIMEOUT, message=f"{self.health_url} to answer 200")
        return process.pid
