"""cairn-serve as its own process on loopback ports, as a user runs it."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cairn import training

# On the server's import path too: a model whose class lives in tests.support (a HeldClassifier)
# is unpickled there.
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`cairn-serve --model-dir DIR --name iris --version 2` on free ports, once ready."""

    def __init__(self, model_dir: Path, *options: str) -> None:
        self.http, self.grpc = free_port(), free_port()
        command = [sys.executable, "-m", "cairn.serving", "--model-dir", str(model_dir)]
        command += ["--name", "iris", "--version", "2", "--host", "127.0.0.1"]
        command += ["--port", str(self.http), "--grpc-port", str(self.grpc)]
        command += ["--expected-digest", training.load_model(model_dir).digest, *options]
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONPATH": path},
        )
        deadline = time.monotonic() + 60
        while not self._ready():
            assert self.process.poll() is None, self.process.communicate()[0].decode()
            assert time.monotonic() < deadline, "cairn-serve did not become ready"
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> str:
        """Stop the server; what it wrote to stdout and stderr."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out.decode()
