"""Drift detection, measured end to end on real cairn-serve processes: how many windows after a
shift starts the window verdict says Drifted, and how often it says so when nothing shifted.

For each data set (wine, breast cancer, diabetes: two classifiers and a regressor), a model is
trained on 60 % of the rows and saved with the profile of its training data; cairn-serve serves
it with monitoring on. Each window sends WINDOW_ROWS rows drawn at random from the held-out 40 %,
one request each over HTTP, reads /v2/models/<name>/monitoring, and judges the difference with
the operator's own code (cairn.monitoring.window, default spec.monitoring settings):

- false alarms: UNSHIFTED_WINDOWS windows of unshifted held-out rows;
- detection delay: then half of the features are scaled by SHIFT, starting at a random row of a
  window; the delay is the number of windows judged from the shift's start to the first Drifted
  one (1: the window in which it started).

The anchor, measured on the very same rows: the defaults of Evidently's data-drift preset (a
two-sample Kolmogorov-Smirnov test per numeric feature at p < 0.05, the data set drifted when half
of the features did) and of Alibi Detect's KSDrift (the same test with a Bonferroni correction,
drifted when any feature is), both over the raw training rows and the raw window rows, which is
what those libraries keep. Ours keeps bin counts only.

Last line: `drift_detect_windows=X false_alarms=N/100` (the worst data set's mean delay and
false-alarm count).
"""

import argparse
import dataclasses
import datetime
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
from numpy.typing import NDArray
from scipy.stats import ks_2samp  # type: ignore[import-untyped]
from sklearn import datasets  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression, Ridge  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from cairn import training
from cairn.api.monitoring import Monitoring, MonitoringVerdict
from cairn.monitoring.window import Reading, totals, verdict
from tests.support.servers import Server

WINDOW_ROWS = 200
UNSHIFTED_WINDOWS = 100
SHIFTS = 10  # shift episodes per data set, each from a fresh, unshifted window
SHIFT = 1.5
ALPHA = 0.05
DRIFT_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class DataSet:
    name: str
    load: Callable[[], Any]
    regression: bool = False


DATA_SETS = [
    DataSet("wine", datasets.load_wine),
    DataSet("breast_cancer", datasets.load_breast_cancer),
    DataSet("diabetes", datasets.load_diabetes, regression=True),
]


def _ks_p_values(reference: NDArray[Any], window: NDArray[Any]) -> list[float]:
    columns = range(reference.shape[1])
    return [float(ks_2samp(reference[:, i], window[:, i]).pvalue) for i in columns]


def evidently_drifted(reference: NDArray[Any], window: NDArray[Any]) -> bool:
    p = _ks_p_values(reference, window)
    return sum(v < ALPHA for v in p) >= DRIFT_SHARE * len(p)


def alibi_drifted(reference: NDArray[Any], window: NDArray[Any]) -> bool:
    p = _ks_p_values(reference, window)
    return min(p) < ALPHA / len(p)


DETECTORS: dict[str, Callable[[NDArray[Any], NDArray[Any]], bool]] = {
    "evidently-ks": evidently_drifted,
    "alibi-ks-bonferroni": alibi_drifted,
}


@dataclasses.dataclass
class Tally:
    false_alarms: int = 0
    windows: int = 0
    delays: list[int] = dataclasses.field(default_factory=list)
    missed: int = 0

    def summary(self) -> str:
        delay = f"{statistics.mean(self.delays):.2f}" if self.delays else "never"
        return (
            f"false_alarms={self.false_alarms}/{self.windows} detect_windows={delay} "
            f"missed={self.missed}/{len(self.delays) + self.missed}"
        )


class Bench:
    """One data set's model behind one cairn-serve, and the windows judged over it."""

    def __init__(self, data: DataSet, workdir: Path, seed: int) -> None:
        raw = data.load()
        X, y = np.asarray(raw.data, dtype=np.float64), np.asarray(raw.target)
        self.names = [str(n) for n in raw.feature_names]
        self.X_train, self.X_test, y_train, _ = train_test_split(
            X, y, test_size=0.4, random_state=seed
        )
        estimator = Ridge() if data.regression else LogisticRegression(max_iter=2000)
        model = make_pipeline(StandardScaler(), estimator).fit(self.X_train, y_train)
        signature = training.infer_signature(model, self.X_train[:1], self.names)
        directory = workdir / data.name
        training.save_model(model, path=directory, signature=signature, training_data=self.X_train)
        self.server = Server(directory)
        self.http = requests.Session()
        self.settings = Monitoring.model_validate({"window": {"minRows": WINDOW_ROWS}})
        self.start = datetime.datetime.now(datetime.UTC)
        self.at_start = self._read()
        self.rng = np.random.default_rng(seed)
        # Half of the features (rounded up: the data set drifts at a share of 0.5), chosen at
        # random, move in a shift.
        width = self.X_test.shape[1]
        self.shifted = self.rng.choice(width, size=(width + 1) // 2, replace=False)

    def _read(self) -> dict[str, Reading]:
        answer = self.http.get(f"{self.server.url}/v2/models/iris/monitoring", timeout=10)
        answer.raise_for_status()
        return {"pod": Reading.parse(answer.json())}

    def _send(self, rows: NDArray[Any]) -> None:
        for row in rows:
            tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": "FP64"}
            body = {"inputs": [{**tensor, "data": row.tolist()}]}
            url = f"{self.server.url}/v2/models/iris/infer"
            answer = self.http.post(url, json=body, timeout=10)
            answer.raise_for_status()

    def window(self, shift_from: int | None) -> dict[str, bool]:
        """Send a window of held-out rows (shifted from row `shift_from` on) and judge it: ours
        from the server's counters, the anchors' from the raw rows."""
        rows = self.X_test[self.rng.integers(0, len(self.X_test), WINDOW_ROWS)].copy()
        if shift_from is not None:
            moved = rows[shift_from:]
            moved[:, self.shifted] *= SHIFT
            rows[shift_from:] = moved
        self._send(rows)
        now_read, now = self._read(), datetime.datetime.now(datetime.UTC)
        counted = totals(self.at_start, now_read, self.start)
        assert counted is not None and counted.rows == WINDOW_ROWS, counted
        baseline = now_read["pod"].baseline
        assert baseline is not None, "the saved model has no baseline profile"
        judged = verdict(self.settings, baseline, counted, 1, self.start, now, 1.0)
        assert judged is not None
        self.start, self.at_start = now, now_read
        found = {"cairn": judged.verdict == MonitoringVerdict.DRIFTED}
        for name, drifted in DETECTORS.items():
            found[name] = drifted(self.X_train, rows)
        return found

    def stop(self) -> None:
        self.server.stop()


def measure(data: DataSet, workdir: Path, seed: int, unshifted: int) -> dict[str, Tally]:
    bench = Bench(data, workdir, seed)
    tallies = {name: Tally() for name in ["cairn", *DETECTORS]}
    try:
        for _ in range(unshifted):
            for name, drifted in bench.window(None).items():
                tallies[name].windows += 1
                tallies[name].false_alarms += drifted
        for _ in range(SHIFTS):
            bench.window(None)  # a calm window between episodes
            start = int(bench.rng.integers(0, WINDOW_ROWS))
            pending = set(tallies)
            for judged in range(1, 6):
                found = bench.window(start if judged == 1 else 0)
                for name in list(pending):
                    if found[name]:
                        tallies[name].delays.append(judged)
                        pending.discard(name)
                if not pending:
                    break
            for name in pending:
                tallies[name].missed += 1
    finally:
        bench.stop()
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--windows", type=int, default=UNSHIFTED_WINDOWS)
    args = parser.parse_args()
    worst_delay, worst_alarms = 0.0, 0
    print(
        f"{WINDOW_ROWS} rows a window, {args.windows} unshifted windows and {SHIFTS} shifts "
        f"(half of the features x{SHIFT}) per data set; anchors judge the same rows",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as workdir:
        for data in DATA_SETS:
            tallies = measure(data, Path(workdir), args.seed, args.windows)
            for name, tally in tallies.items():
                print(f"{data.name:14} {name:20} {tally.summary()}", flush=True)
            ours = tallies["cairn"]
            if ours.missed:
                sys.exit(f"{data.name}: cairn missed {ours.missed} shifts")
            worst_delay = max(worst_delay, statistics.mean(ours.delays))
            scaled = round(ours.false_alarms * 100 / ours.windows)
            worst_alarms = max(worst_alarms, scaled)
    print(f"drift_detect_windows={worst_delay:.2f} false_alarms={worst_alarms}/100")


if __name__ == "__main__":
    main()
