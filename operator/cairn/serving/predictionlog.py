"""A sample of what the model is asked and answers, as JSON Lines under the artifact store, for
data scientists to look at and retrain on.

One line per row: `{"time", "id", "row", "features": {name: value}, "prediction"}`, in
`<directory>/<pod>/<YYYY-MM-DDTHH>.jsonl` (UTC, a file per pod and hour, so pods never share a
file and old hours can be moved or deleted whole). Features the Model declares sensitive are
never written. Writing happens on a thread of its own behind a bounded queue: a slow or full
disk, or a store that cannot be written, drops lines (counted, and said in the log once a
minute), and never slows or fails an inference.
"""

import datetime
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import orjson
from numpy.typing import NDArray

log = logging.getLogger("cairn.serving.predictionlog")
QUEUE_SIZE = 10_000  # requests waiting to be written
COMPLAINT_INTERVAL_S = 60.0


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        sample_rate: float,
        columns: Sequence[str],
        sensitive: Collection[str],
        pod: str,
        clock: Callable[[], float] = time.time,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self.directory = directory / pod
        self.sample_rate = sample_rate
        self._kept = [(i, name) for i, name in enumerate(columns) if name not in set(sensitive)]
        self._clock, self._chance = clock, chance
        self._queue: queue.Queue[tuple[float, str, list[Any], list[Any]] | None] = queue.Queue(
            QUEUE_SIZE
        )
        self.written = 0
        self.dropped = 0
        self._complained = 0.0
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()

    def offer(self, answer_id: str, rows: NDArray[Any], predictions: list[Any]) -> None:
        """Log this answer's rows, if it is sampled (called on the request path: never blocks)."""
        if self.sample_rate <= 0 or self._chance() >= self.sample_rate:
            return
        kept = [[row[i] for i, _ in self._kept] for row in rows.tolist()]
        try:
            self._queue.put_nowait((self._clock(), answer_id, kept, predictions))
        except queue.Full:
            self._drop(len(kept), "the writer is behind (queue full)")

    def _drop(self, lines: int, why: str) -> None:
        self.dropped += lines
        now = time.monotonic()
        if now - self._complained >= COMPLAINT_INTERVAL_S:
            self._complained = now
            log.warning("prediction log: dropped %d line(s): %s", lines, why)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            when, answer_id, rows, predictions = item
            moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
            stamp = moment.isoformat().replace("+00:00", "Z")
            lines = b"".join(
                orjson.dumps(
                    {
                        "time": stamp,
                        "id": answer_id,
                        "row": index,
                        "features": {
                            name: value for (_, name), value in zip(self._kept, row, strict=True)
                        },
                        "prediction": prediction,
                    },
                    option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY,
                )
                for index, (row, prediction) in enumerate(zip(rows, predictions, strict=False))
            )
            path = self.directory / f"{moment:%Y-%m-%dT%H}.jsonl"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as out:
                    out.write(lines)
            except OSError as error:
                self._drop(len(rows), f"{path}: {error.strerror or error}")
            else:
                self.written += len(rows)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
