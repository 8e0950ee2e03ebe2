"""make bench-serve, stopped half-way by SIGTERM (as a CI timeout stops it), leaves nothing running:
not the model server it started in a session of its own, not its load generator."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_sigterm_stops_every_server_and_load_generator_it_started(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    # A load generator that measures forever: the signal comes in the middle of a measurement.
    wrk = tools / "wrk"
    wrk.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/wrk.pid\nexec sleep 600\n")
    (tools / "promtool").write_text("#!/bin/sh\nexit 0\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    env = os.environ | {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "BENCH_SERVERS": "cairn",
        "BENCH_MODELS": "lr",
        "BENCH_GRPC": "0",
        "CAIRN_CACHE_DIR": str(tmp_path / "cache"),
    }
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.serve.bench"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = wrk_pid = None
    try:
        assert bench.stderr is not None
        deadline = time.monotonic() + 120
        for line in bench.stderr:
            if match := re.search(r"started cairn \(pid (\d+)\)", line):
                server = int(match.group(1))
                break
            assert time.monotonic() < deadline
        while not (tmp_path / "wrk.pid").exists() or not (tmp_path / "wrk.pid").read_text():
            assert bench.poll() is None, "the benchmark ended before measuring"
            assert time.monotonic() < deadline, "the benchmark never started measuring"
            time.sleep(0.1)
        wrk_pid = int((tmp_path / "wrk.pid").read_text())
        assert server is not None and _alive(server) and _alive(wrk_pid)

        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 128 + signal.SIGTERM
        rest = bench.stderr.read()
        assert "SIGTERM: stopping everything started" in rest
        assert not _alive(server), "the model server outlived the benchmark"
        assert not _alive(wrk_pid), "the load generator outlived the benchmark"
    finally:
        for pid in (server, wrk_pid):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL) if pid == server else os.kill(
                        pid, signal.SIGKILL
                    )
        if bench.poll() is None:
            bench.kill()
            bench.wait()
