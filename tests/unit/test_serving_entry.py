"""cairn-serve told to stop before it serves: in a container it is PID 1, which the kernel
gives no signal it has no handler for. The test starts it as PID 1 would see a SIGTERM without
a handler (ignored, a disposition the process inherits), its model's download stuck on a store
that accepts the connection and never answers, and sends SIGTERM once the server has put its
own handler in place: it must leave at once, not download on and serve."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.support.wait import wait_for

pytestmark = pytest.mark.unit

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM, from /proc (SigCgt is a mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    return False


def ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_sigterm_while_the_model_downloads_ends_the_server_at_once(tmp_path: Path) -> None:
    with socket.socket() as store:
        store.bind(("127.0.0.1", 0))
        store.listen()  # connections are accepted by the kernel, and never answered
        env = {
            **os.environ,
            "PYTHONPATH": str(OPERATOR),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{store.getsockname()[1]}",
        }
        command = [sys.executable, "-m", "cairn.serving_entry", "--model-uri", "s3://models/iris/1"]
        command += ["--name", "iris", "--host", "127.0.0.1", "--port", str(free_port())]
        command += ["--grpc-port", "0", "--expected-digest", "sha256:" + "0" * 64]
        server = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ignore_sigterm,
        )
        try:
            wait_for(
                lambda: catches_sigterm(server.pid) or server.poll() is not None,
                timeout=60,
                message="cairn-serve to handle SIGTERM",
            )
            time.sleep(1)  # into its imports or the stuck download
            assert server.poll() is None, server.communicate()
            server.send_signal(signal.SIGTERM)
            out, err = server.communicate(timeout=15)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert server.returncode == 0, (out, err)
    assert "SIGTERM before serving: exiting" in err
    assert "serving on" not in out + err


CLOSING_SCRIPT = """
import logging, os, signal, sys
from pathlib import Path
import numpy as np
from cairn.serving_entry import exit_before_serving
from cairn.serving.main import close_despite_signals
from cairn.serving.predictionlog import PredictionLog

logging.basicConfig(level="INFO")
signal.signal(signal.SIGTERM, exit_before_serving)  # as once the server has stopped
prediction_log = PredictionLog(Path(sys.argv[1]), 1.0, ["x"], [], "pod")


class Draining:
    def close(self):
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM, while the log is written
        for index in range(2000):
            prediction_log.offer(f"answer-{index}", np.array([[float(index)]]), [index % 3])
        prediction_log.close()


close_despite_signals(Draining())
print("closed", prediction_log.written)
"""


def test_a_signal_while_the_server_closes_loses_no_prediction_log_line(tmp_path: Path) -> None:
    """After the drain the server finishes its last batches and writes the prediction log's
    queued lines; a second SIGTERM then (a person, a supervisor) must not end it before."""
    done = subprocess.run(
        [sys.executable, "-c", CLOSING_SCRIPT, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(OPERATOR)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["closed", "2000"], done.stderr
    assert "SIGTERM while closing: exiting now that it is done" in done.stderr
    written = [path.read_text() for path in (tmp_path / "pod").glob("*.jsonl")]
    assert sum(text.count("\n") for text in written) == 2000
