"""The fuzzed-specs test prints its seed so that a failure replays: the same seed must draw the
same objects in another process, whatever that process's hash seed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRAW = (
    "import json, sys; from pathlib import Path; from tests.support.fuzz import drawn; "
    "print(json.dumps(drawn(Path(sys.argv[1]), 40, 1234), sort_keys=True))"
)


def draws_in_a_process(crd: Path, hash_seed: str) -> list[object]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    printed = subprocess.run(
        [sys.executable, "-c", DRAW, str(crd)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    found: list[object] = json.loads(printed)
    return found


@pytest.mark.parametrize("plural", ["continuoustrainings", "modeldeployments"])
def test_one_seed_draws_the_same_specs_under_any_hash_seed(plural: str) -> None:
    crd = ROOT / "crds" / f"cairn.dev_{plural}.yaml"
    first, second = draws_in_a_process(crd, "1"), draws_in_a_process(crd, "2")
    assert len(first) == 40
    assert first == second
