"""The `cairn` command as a user runs it: the installed script, in its own process."""

import os
import subprocess
import sys
from pathlib import Path

# Where pip installed the `cairn` and `kubectl-cairn` scripts of this interpreter.
SCRIPTS = str(Path(sys.executable).parent)


def cairn(*args: str, program: tuple[str, ...] = ("cairn",)) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [*program, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def ok(*args: str) -> str:
    """The command's output; the test fails, with what it said, unless it exited 0."""
    done = cairn(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout
