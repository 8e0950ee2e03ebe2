"""Loading the served model: verify the artifact, load it, pick its runtime."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from cairn.serving.protocol import ModelSpec
from cairn.serving.runtime import Runtime, choose_runtime
from cairn.storage import StorageError
from cairn.training import SavedModel, load_model

log = logging.getLogger("cairn.serving")
PLATFORM = "sklearn"


class ModelLoadError(Exception):
    """The model directory cannot be served: missing, malformed, or not the expected digest."""


@dataclass(frozen=True)
class LoadedModel:
    saved: SavedModel
    spec: ModelSpec
    runtime: Runtime
    runtime_reason: str
    load_seconds: float

    @property
    def digest(self) -> str:
        return self.saved.digest

    def predict(self, rows: NDArray[Any], outputs: Any) -> dict[str, NDArray[Any]]:
        return self.runtime.predict(rows, outputs)


def load(
    model_dir: Path,
    name: str,
    version: str | None,
    *,
    expected_digest: str | None,
    runtime: str = "auto",
) -> LoadedModel:
    """The model, once its files match `expected_digest` (and the sha256s its metadata lists)."""
    started = time.perf_counter()
    if expected_digest is None:
        log.warning(
            "no expected digest given: %s is checked against its own metadata only "
            "(pass --expected-digest to refuse any other artifact)",
            model_dir,
        )
    try:
        saved = load_model(model_dir, expected_digest=expected_digest)
    except (StorageError, ValueError, OSError) as error:
        raise ModelLoadError(f"model {name!r} from {model_dir} is not served: {error}") from None
    signature = saved.metadata.signature
    spec = ModelSpec.from_signature(name, version, PLATFORM, signature)
    choice = choose_runtime(saved.estimator, signature, runtime)
    if runtime == "onnx" and choice.runtime.name != "onnx":
        raise ModelLoadError(f"--runtime onnx was asked for and cannot be used: {choice.reason}")
    return LoadedModel(saved, spec, choice.runtime, choice.reason, time.perf_counter() - started)
