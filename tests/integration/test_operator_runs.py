"""kopf runs the Cairn controllers against the real cluster: in-process and as `cairn-operator`."""

import os
import signal
import subprocess
import sys

from tests.support.cluster import Cluster
from tests.support.http import get_or_none
from tests.support.operator import STARTUP_TIMEOUT, STOP_TIMEOUT, RunningOperator, free_local_port
from tests.support.wait import wait_for


def test_in_process_operator_answers_its_liveness_probe(operator: RunningOperator) -> None:
    response = get_or_none(operator.health_url)

    assert response is not None
    assert response.status_code == 200
    assert isinstance(response.json(), dict)


def test_cairn_operator_command_serves_health_and_stops_on_sigterm(
    cluster: Cluster, namespace: str
) -> None:
    health_address = f"127.0.0.1:{free_local_port()}"
    health_url = f"http://{health_address}/healthz"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cairn.operator_main",
            "--namespace",
            namespace,
            "--health-addr",
            health_address,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            assert process.poll() is None, f"cairn-operator exited with {process.returncode}"
            response = get_or_none(health_url)
            return response is not None and response.status_code == 200

        wait_for(healthy, timeout=STARTUP_TIMEOUT, message=f"{health_url} to answer 200")

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=STOP_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, output
    assert "Activity 'apply_settings' succeeded." in output
    assert "Traceback" not in output, output


def test_a_bad_installation_default_stops_cairn_operator_naming_it(
    cluster: Cluster, namespace: str
) -> None:
    """A bad CAIRN_ANALYSIS_* (what a hand-edited Deployment could carry) fails at startup, not
    at every canary later."""
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "cairn.operator_main"),
            *("--namespace", namespace),
            *("--health-addr", f"127.0.0.1:{free_local_port()}"),
            *("--metrics-addr", "0"),
        ],
        env={**os.environ, "CAIRN_ANALYSIS_FAILURE_LIMIT": "0"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )

    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "CAIRN_ANALYSIS_FAILURE_LIMIT='0': must be a whole number of at least 1" in said, said
