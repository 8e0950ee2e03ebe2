"""cairn-serve's entry point, outside the cairn.serving package (whose imports take a second or
more) on purpose: it makes a SIGTERM that comes before the server listens end the process, and
only then imports the server.

Where cairn-serve is PID 1 (`docker run`; the operator's pods share their process namespace,
cairn.kube.podprocess, so there it is not), the kernel drops a signal PID 1 has no handler for:
a pod deleted while its model is still importing, downloading or loading would load on, serve
without ever being told to stop, and wait for the kubelet's SIGKILL at the end of the grace
period. uvicorn puts its own handler in place once it serves (the graceful drain). `python -m
cairn.serving_entry` is the same command; `python -m cairn.serving` imports the package first.
"""

import os
import signal
from types import FrameType


def exit_before_serving(signum: int, frame: FrameType | None) -> None:
    """Nothing is served or held yet: leave at once, threads still downloading included."""
    os.write(2, f"cairn-serve: {signal.Signals(signum).name} before serving: exiting\n".encode())
    os._exit(0)


def main() -> int:
    signal.signal(signal.SIGTERM, exit_before_serving)
    from cairn.serving.main import main as serve

    return serve()


if __name__ == "__main__":
    raise SystemExit(main())
