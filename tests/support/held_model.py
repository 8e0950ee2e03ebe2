"""A served model that a test can hold inside a model call, and that writes down every call.

Whether concurrent requests were batched depends on when they arrive, unless the model itself
waits: while it is held, requests that arrive can only queue, and once all of them wait
(cairn_serving_queue_depth), releasing it leaves the batcher one queue to share out.
Each call's rows are written down by the model, not by the server, so a test counts the model
calls it did without believing the server's own metrics.

The model is a real scikit-learn estimator saved with cairn.training.save_model, so a server in
another process loads it from its pickle (its class is importable there: see servers.Server).
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone  # type: ignore[import-untyped]

from cairn import training

T = TypeVar("T")
# A held call gives up after this long, so that a test that fails to release never hangs a
# server for good (the test's own assertions fail first).
HOLD_TIMEOUT_S = 60.0


class HeldClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """`estimator`, fitted, whose predict and predict_proba wait while `<gate>/hold` exists
    and append the rows of each call to `<gate>/calls` (one JSON line per call)."""

    def __init__(self, estimator: Any = None, gate: str = "") -> None:
        self.estimator = estimator
        self.gate = gate

    def fit(self, X: ArrayLike, y: ArrayLike) -> "HeldClassifier":
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X: NDArray[Any]) -> NDArray[Any]:
        self._enter("predict", X)
        return np.asarray(self.estimator_.predict(X))

    def predict_proba(self, X: NDArray[Any]) -> NDArray[Any]:
        self._enter("predict_proba", X)
        return np.asarray(self.estimator_.predict_proba(X))

    def _enter(self, method: str, X: NDArray[Any]) -> None:
        gate = Path(self.gate)
        with (gate / "calls").open("a") as calls:
            calls.write(json.dumps({"method": method, "rows": np.asarray(X).tolist()}) + "\n")
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        while (gate / "hold").exists() and time.monotonic() < deadline:
            time.sleep(0.002)


@dataclass(frozen=True)
class Gate:
    """The test's side of a HeldClassifier."""

    directory: Path

    def hold(self) -> None:
        """Model calls from now on wait until release()."""
        (self.directory / "hold").touch()

    def release(self) -> None:
        (self.directory / "hold").unlink(missing_ok=True)

    def forget_calls(self) -> None:
        (self.directory / "calls").write_text("")

    def calls(self) -> list[NDArray[np.float64]]:
        """The rows of each model call since forget_calls(), in order. A model call is one
        predict (scikit-learn's runtime calls predict_proba after it, on the same rows)."""
        path = self.directory / "calls"
        # Read while the model may be writing: a line without its newline is not written yet.
        lines = path.read_text().split("\n")[:-1] if path.exists() else []
        entries = [json.loads(line) for line in lines]
        return [np.asarray(e["rows"], dtype=float) for e in entries if e["method"] == "predict"]


def save_held_model(root: Path, estimator: Any, X: NDArray[Any], y: NDArray[Any]) -> Gate:
    """`estimator` fitted on X, y and saved as a HeldClassifier at `root/model`; its gate is
    `root/gate` (outside the model directory, whose files are hashed into its digest)."""
    gate = Gate(root / "gate")
    gate.directory.mkdir(parents=True)
    model = HeldClassifier(estimator, str(gate.directory)).fit(X, y)
    training.save_model(model, path=root / "model", sample_input=X[:1])
    gate.forget_calls()  # save_model's own predictions on the sample
    return gate


async def hold_first_then_queue(
    gate: Gate,
    requests: Sequence[Callable[[], Awaitable[T]]],
    queued: Callable[[], Awaitable[int]],
    timeout: float = 30,
) -> list[T]:
    """Send the first request with the model held, the others once the model is called on it,
    and release the model once `queued` (the server's count of requests waiting for the model,
    cairn_serving_queue_depth) says all the others wait. So the model answers the first alone
    and finds all the others queued, whatever the timing: the batcher alone decides how they
    are shared out.

    The server's first model call must run off its event loop, which it does on a fresh server
    (the batcher runs inline only calls it has measured cheap)."""
    gate.forget_calls()
    gate.hold()
    try:
        first = asyncio.ensure_future(requests[0]())
        await _until(_async(lambda: bool(gate.calls())), "the model called on the first", timeout)
        rest = [asyncio.ensure_future(request()) for request in requests[1:]]

        async def all_queued() -> bool:
            return await queued() == len(rest)

        await _until(all_queued, f"{len(rest)} requests queued", timeout)
    finally:
        gate.release()
    return list(await asyncio.gather(first, *rest))


def _async(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def call() -> bool:
        return condition()

    return call


async def _until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.002)
