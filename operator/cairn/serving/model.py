"""Loading the served model: verify the artifact, load it, pick its runtime."""

import importlib.metadata
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from cairn.serving.protocol import ModelSpec
from cairn.serving.runtime import Runtime, choose_runtime
from cairn.storage import DigestMismatch, Manifest, StorageError
from cairn.training import SavedModel, load_model
from cairn.training.model_dir import BOOSTERS, library_distribution

log = logging.getLogger("cairn.serving")
# The model metadata's `platform`, by the library of the model's class.
PLATFORMS = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
PLATFORM = "sklearn"


class ModelLoadError(Exception):
    """The model directory cannot be served: missing, malformed, or not the expected digest
    (`mismatch`)."""

    def __init__(self, message: str, mismatch: bool = False) -> None:
        super().__init__(message)
        self.mismatch = mismatch


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
    hashed: Manifest | None = None,
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
        saved = load_model(model_dir, expected_digest=expected_digest, hashed=hashed)
    except (StorageError, ValueError, OSError) as error:
        raise ModelLoadError(
            f"model {name!r} from {model_dir} is not served: {error}",
            mismatch=isinstance(error, DigestMismatch),
        ) from None
    _warn_on_other_versions(saved.metadata.frameworks)
    signature = saved.metadata.signature
    platform = PLATFORMS.get(saved.metadata.model_class.split(".")[0], PLATFORM)
    spec = ModelSpec.from_signature(name, version, platform, signature)
    choice = choose_runtime(saved.estimator, signature, runtime)
    if runtime == "onnx" and choice.runtime.name != "onnx":
        raise ModelLoadError(f"--runtime onnx was asked for and cannot be used: {choice.reason}")
    return LoadedModel(saved, spec, choice.runtime, choice.reason, time.perf_counter() - started)


def _warn_on_other_versions(saved_with: dict[str, str]) -> None:
    """A pickle is read by the library version that wrote it; another one may predict
    differently (or not load): say so where it happens."""
    for library in ("scikit-learn", *BOOSTERS):
        if library not in saved_with:
            continue
        try:
            here = importlib.metadata.version(library_distribution(library))
        except importlib.metadata.PackageNotFoundError:
            here = "not installed"
        if here != saved_with[library]:
            log.warning(
                "the model was saved with %s %s; this server has %s",
                library,
                saved_with[library],
                here,
            )
