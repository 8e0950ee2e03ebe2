"""The model directory: what `save_model` writes and the model server loads.

    model.joblib       the estimator, pickled by joblib (XGBoost and LightGBM models too, as their
                       scikit-learn wrappers)
    cairn-model.json   metadata: format, frameworks (with the xgboost or lightgbm version of such
                       a model), signature, sha256 of every other file, metrics
    baseline.json      the profile of the training data and of the model's predictions on it
                       (cairn.monitoring.profile), what monitoring compares production with

The artifact digest (cairn.storage) covers every file, this metadata included: a digest cannot
be written into a file it covers, so it travels in the termination message and the ModelVersion,
and whoever serves the model verifies the directory against it. The metadata's own per-file
sha256 map lets a directory be checked without that digest, as on a laptop.
"""

import importlib.metadata
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import sklearn  # type: ignore[import-untyped]
from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
from sklearn.utils.validation import check_is_fitted  # type: ignore[import-untyped]

from cairn.monitoring.profile import FILE as BASELINE_FILE
from cairn.monitoring.profile import Profile
from cairn.storage import (
    ArtifactError,
    DigestMismatch,
    Manifest,
    directory_manifest,
    verify_digest,
)
from cairn.training.signature import Signature, SignatureError, checked_signature

FORMAT = "sklearn-joblib"
MODEL_FILE = "model.joblib"
METADATA_FILE = "cairn-model.json"
SCHEMA_VERSION = 1
# A write in progress; a process killed mid-write leaves one, which the next save removes.
_PARTIAL_SUFFIX = ".cairn-partial"


@dataclass(frozen=True)
class ModelMetadata:
    format: str
    model_file: str
    model_class: str
    frameworks: dict[str, str]
    signature: Signature
    files: dict[str, str]  # sha256 (hex) of every file except the metadata, by relative path
    metrics: dict[str, float] = field(default_factory=dict)
    dataset: dict[str, str] | None = None  # {"uri", "digest"}
    run: str | None = None
    model: str | None = None
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path) -> "ModelMetadata":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ArtifactError(f"{source} is not valid JSON: {error}") from None
        if not isinstance(raw, dict):
            raise ArtifactError(f"{source} must hold a JSON object")
        missing = [key for key in ("format", "model_file", "files", "signature") if key not in raw]
        if missing:
            raise ArtifactError(f"{source} lacks {', '.join(missing)}: save the model again")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"{source} has schema_version {raw.get('schema_version')!r}; this Cairn reads "
                f"{SCHEMA_VERSION}"
            )
        files = raw["files"]
        if not isinstance(files, dict) or not all(
            isinstance(path, str) and isinstance(sha, str) for path, sha in files.items()
        ):
            raise ArtifactError(f"{source}: files must map relative paths to sha256 hex digests")
        if raw["model_file"] not in files:
            raise ArtifactError(f"{source}: model_file {raw['model_file']!r} is not in files")
        known = {key: raw[key] for key in cls.__dataclass_fields__ if key in raw}
        try:
            known["signature"] = checked_signature(raw["signature"])
        except SignatureError as error:
            raise ArtifactError(f"{source}: {error}") from None
        return cls(**known)


@dataclass(frozen=True)
class SavedModel:
    """A model directory as written or loaded: the estimator, its metadata and its manifest."""

    path: Path
    estimator: Any
    metadata: ModelMetadata
    manifest: Manifest

    @property
    def digest(self) -> str:
        return self.manifest.digest


def write_model_dir(
    estimator: Any,
    directory: Path,
    *,
    signature: Signature,
    metrics: dict[str, float],
    dataset: dict[str, str] | None,
    run: str | None,
    model: str | None,
    baseline: Profile | None = None,
) -> SavedModel:
    """Write a fitted estimator (see check_estimator) and its metadata into `directory`, with
    the profile of its training data (`baseline`) when there is one."""
    directory.mkdir(parents=True, exist_ok=True)
    for partial in directory.glob(f"*{_PARTIAL_SUFFIX}"):
        partial.unlink()
    # The metadata goes last, so a directory with metadata always has the files it lists.
    (directory / METADATA_FILE).unlink(missing_ok=True)
    (directory / BASELINE_FILE).unlink(missing_ok=True)
    _write_atomically(directory / MODEL_FILE, lambda path: joblib.dump(estimator, path))
    if baseline is not None:
        text = baseline.to_json()
        _write_atomically(directory / BASELINE_FILE, lambda path: path.write_text(text, "utf-8"))

    metadata = ModelMetadata(
        format=FORMAT,
        model_file=MODEL_FILE,
        model_class=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        frameworks=framework_versions(estimator),
        signature=signature,
        files=directory_manifest(directory).sha256_by_path(),
        metrics=dict(metrics),
        dataset=dataset,
        run=run,
        model=model,
        created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    _write_atomically(
        directory / METADATA_FILE, lambda path: path.write_text(metadata.to_json(), "utf-8")
    )
    return SavedModel(directory, estimator, metadata, directory_manifest(directory))


# Libraries whose models save_model takes through their scikit-learn wrappers (XGBClassifier,
# XGBRegressor, LGBMClassifier, LGBMRegressor, ...): their versions go into the metadata too.
BOOSTERS = ("xgboost", "lightgbm")


def framework_versions(estimator: Any = None) -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }
    for library in sorted(libraries_of(estimator) & set(BOOSTERS)):
        versions[library] = importlib.metadata.version(library_distribution(library))
    return versions


def libraries_of(estimator: Any) -> set[str]:
    """The top-level modules of an estimator's class and of every estimator nested in it (the
    steps of a Pipeline, a meta-estimator's base estimator)."""
    if estimator is None:
        return set()
    found = {type(estimator).__module__.split(".")[0]}
    params = estimator.get_params(deep=True) if isinstance(estimator, BaseEstimator) else {}
    for value in params.values():
        if isinstance(value, BaseEstimator):
            found.add(type(value).__module__.split(".")[0])
    return found


def library_distribution(library: str) -> str:
    """The installed distribution of a module: xgboost comes as xgboost or xgboost-cpu."""
    for name in (library, f"{library}-cpu"):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return library


def check_estimator(estimator: Any) -> None:
    """Refuse what save_model cannot save: anything but a fitted scikit-learn estimator (which
    XGBoost's and LightGBM's scikit-learn wrappers are)."""
    if not isinstance(estimator, BaseEstimator):
        raise TypeError(
            f"save_model saves scikit-learn estimators (and Pipelines, and XGBoost's and "
            f"LightGBM's scikit-learn wrappers such as XGBClassifier), not a "
            f"{type(estimator).__name__}"
        )
    check_is_fitted(estimator)


def _write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    partial = target.with_name(target.name + _PARTIAL_SUFFIX)
    write(partial)
    os.replace(partial, target)


def read_metadata(directory: Path) -> ModelMetadata:
    path = directory / METADATA_FILE
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ArtifactError(
            f"{directory} is not a Cairn model directory: it has no {METADATA_FILE}"
        ) from None
    return ModelMetadata.from_json(text, path)


def load_model(
    directory: Path | str,
    *,
    expected_digest: str | None = None,
    hashed: Manifest | None = None,
) -> SavedModel:
    """Load a model directory once its files are verified; only then is the pickle opened.

    With `expected_digest` (the ModelVersion's), the whole directory must match it; in any case
    every file must match the sha256 its metadata records. `hashed`: the manifest of files the
    caller has just written and hashed itself (a download), so they are not read twice.
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    if hashed is not None and expected_digest is not None and hashed.digest == expected_digest:
        manifest = hashed
    elif expected_digest is not None:
        manifest = verify_digest(directory, expected_digest)
    else:
        manifest = directory_manifest(directory)
    recorded = metadata.files
    actual = {path: sha for path, sha in manifest.sha256_by_path().items() if path != METADATA_FILE}
    if actual != recorded:
        changed = sorted(
            path
            for path in recorded.keys() | actual.keys()
            if recorded.get(path) != actual.get(path)
        )
        raise DigestMismatch(
            f"{directory}: {', '.join(changed)} differ from the sha256 recorded in "
            f"{METADATA_FILE} (changed, added or removed after the model was saved)"
        )
    if metadata.format != FORMAT:
        raise ArtifactError(f"{directory} holds format {metadata.format!r}; Cairn loads {FORMAT!r}")
    estimator = joblib.load(directory / metadata.model_file)
    return SavedModel(directory, estimator, metadata, manifest)
