"""The servers a benchmark starts, and their stopping however the benchmark ends.

Each server runs in a session (and process group) of its own, so that a load generator's signals
never reach it and stopping it stops its worker processes too (MLServer's). A signal that ends
the benchmark — SIGTERM from a CI timeout, SIGINT, SIGHUP — becomes SystemExit, so the
`finally` blocks and the Processes context run: every group started is stopped, TERM first,
then KILL for whatever is left in it (MLServer ignores SIGTERM).
"""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

STOP_TIMEOUT = 10.0


def exit_on_signals() -> None:
    """SIGTERM, SIGINT and SIGHUP raise SystemExit (128 + the signal) in the main thread."""

    def leave(signum: int, frame: FrameType | None) -> None:
        # Once: the stopping that follows is bounded (STOP_TIMEOUT per group) and must finish.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        name = signal.Signals(signum).name
        print(f"[bench] {name}: stopping everything started", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, leave)


class Processes:
    """Processes started in sessions of their own; all of them stopped when the context ends."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> "Processes":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        command: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        group = process.pid  # a session leader's pid is its group's id
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(group, signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT)
        # Whatever is left of the group (the process itself if it ignored SIGTERM, workers
        # that outlived it) is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        if process in self._running:
            self._running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process)
