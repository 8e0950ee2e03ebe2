"""The state of one training process, and the exit hook that reports it.

Training code calls the module-level functions of `cairn.training`, which act on the process's
default session; tests make their own sessions with an environment of their choosing.
"""

import atexit
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, SupportsFloat, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike

from cairn.monitoring.profile import Profile, ProfileError, sample_rows
from cairn.monitoring.profile import build as build_profile
from cairn.storage import ArtifactError, file_uri
from cairn.training import env as contract
from cairn.training.datasets import Dataset, load_dataset
from cairn.training.fairness import FairnessError, measure
from cairn.training.metrics import checked_metric
from cairn.training.model_dir import (
    FORMAT,
    SavedModel,
    check_estimator,
    load_model,
    write_model_dir,
)
from cairn.training.params import convert_param, parse_params
from cairn.training.signature import Signature, checked_signature, infer_signature
from cairn.training.summary import SummaryTooLarge, encode_failure, encode_summary

T = TypeVar("T")
OBJECT_STORE_SCHEMES = ("s3://",)


class ArtifactUploadFailed(ArtifactError):
    """The model was saved but could not be uploaded to the run's output; the run fails with
    reason ArtifactUploadFailed and this message (which names the store and its error)."""


class TrainingSession:
    def __init__(
        self, environ: Mapping[str, str] | None = None, *, finish_at_exit: bool = True
    ) -> None:
        self._environ = environ  # None: os.environ, read at each use
        self._finish_at_exit = finish_at_exit
        self._exit_hook_registered = False
        self._metrics: dict[str, float] = {}
        self._dataset: Dataset | None = None
        self._artifact: dict[str, Any] | None = None
        self._evaluation: dict[str, Any] | None = None
        self._fairness: dict[str, dict[str, Any]] = {}  # by sensitive feature
        self._written: bytes | None = None
        self._champion_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def env(self) -> contract.RunEnv:
        return contract.RunEnv.from_environ(os.environ if self._environ is None else self._environ)

    def params(self) -> dict[str, Any]:
        """All parameters of the run (CAIRN_PARAMS), as given."""
        return parse_params(self.env.params_json)

    @overload
    def param(self, name: str, default: T) -> T: ...
    @overload
    def param(self, name: str, default: None, as_type: Callable[[Any], T]) -> T | None: ...
    def param(self, name: str, default: Any, as_type: Callable[[Any], Any] | None = None) -> Any:
        """Parameter `name` converted to the type of `default` (or `as_type` when the default is
        None, for an optional parameter); `default` when the run does not set it."""
        return convert_param(name, self.params().get(name), default, as_type)

    def dataset_uri(self, default: str | None = None) -> str:
        """The run's dataset (CAIRN_DATASET_URI), else `default`."""
        uri = self.env.dataset_uri or default
        if uri is None:
            raise LookupError(
                f"{contract.DATASET_URI} is not set: give the TrainingRun a dataset, "
                "or pass a default such as dataset_uri('sklearn://iris')"
            )
        return uri

    def load_dataset(self, uri: str | None = None) -> Dataset:
        """X, y and the data's digest, from `uri` or the run's dataset."""
        self._register_exit_hook()
        env = self.env
        chosen = uri or self.dataset_uri()
        # The run's own dataset is where the operator mounted it.
        local = env.dataset_path if chosen == env.dataset_uri else None
        self._dataset = load_dataset(chosen, local)
        return self._dataset

    def champion(self) -> Any | None:
        """The model to beat: the version holding the Model's promotion alias when this run
        started, loaded once its files match their digest; None when there is none (the first
        version, or a Model without a promotion policy)."""
        found = self.env.champion
        if found is None:
            return None
        directory = found.directory
        if directory is None and found.uri:
            directory = self._download_champion(found.uri, found.digest)
        if directory is None:
            return None
        return load_model(directory, expected_digest=found.digest).estimator

    def _download_champion(self, uri: str, digest: str) -> Path:
        from cairn.training.artifacts import download_model  # boto3: only when needed

        if self._champion_dir is None:
            self._champion_dir = tempfile.TemporaryDirectory(prefix="cairn-champion-")
            download_model(uri, Path(self._champion_dir.name), digest)
        return Path(self._champion_dir.name)

    def evaluate(
        self,
        model: Any,
        X: ArrayLike,
        y: ArrayLike,
        metrics: Mapping[str, Callable[[Any, Any], SupportsFloat]],
        *,
        sensitive_features: Any = None,
        positive_label: Any = None,
    ) -> dict[str, float]:
        """Score `model` and the champion on the same evaluation data (X, y) with each of
        `metrics` (name → scorer(y_true, y_pred), such as sklearn's f1_score), and log both:
        the model's scores as the run's metrics, the champion's beside them. Automatic promotion
        compares exactly these two. With `sensitive_features`, also the model's group fairness
        on those rows (see log_fairness). Returns the model's scores."""
        predicted = model.predict(X)
        scores = {name: float(score(y, predicted)) for name, score in metrics.items()}
        self.log_metrics(scores)
        if sensitive_features is not None:
            self.log_fairness(y, predicted, sensitive_features, positive_label=positive_label)
        champion = self.champion()
        if champion is not None:
            held = {name: float(score(y, champion.predict(X))) for name, score in metrics.items()}
            self.log_champion_metrics(held)
        return scores

    def log_champion_metrics(self, metrics: Mapping[str, SupportsFloat]) -> None:
        """Record the champion's metrics on this run's evaluation data (what `evaluate` does for
        you), for promotion to compare with the run's own."""
        found = self.env.champion
        if found is None:
            raise LookupError(
                "this run has no champion to compare with: its Model has no promotion policy, or "
                "no version holds the alias yet"
            )
        self._register_exit_hook()
        checked = dict(checked_metric(name, value) for name, value in metrics.items())
        self._evaluation = {"championVersion": found.version, "championMetrics": checked}

    def log_fairness(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sensitive_features: Any,
        *,
        positive_label: Any = None,
    ) -> list[dict[str, Any]]:
        """Measure and record the group fairness of the predictions `y_pred` on the evaluation
        rows `y_true`, for each sensitive feature named in `sensitive_features` ({'sex': values
        of those rows}, or a DataFrame): per-group metrics, demographic parity difference,
        disparate impact ratio, equalized odds and equal opportunity differences, computed by
        fairlearn. `positive_label`: the favourable outcome (default 1 for 0/1 labels). The
        ModelVersion records it; the Model's fairness gates judge it. Logging a feature again
        replaces it. Returns what was recorded."""
        self._register_exit_hook()
        measured = {
            m.sensitive_feature: m.to_dict()
            for m in measure(y_true, y_pred, sensitive_features, positive_label)
        }
        recorded = {**self._fairness, **measured}
        try:
            encode_summary(
                {},
                self._artifact,
                self._dataset_summary(),
                self._evaluation,
                list(recorded.values()),
            )
        except SummaryTooLarge:
            raise FairnessError(
                "the fairness of these sensitive features does not fit in the run summary (4096 "
                "bytes): name fewer features, or bin those with many groups"
            ) from None
        self._fairness = recorded
        return list(measured.values())

    @property
    def fairness(self) -> list[dict[str, Any]]:
        return list(self._fairness.values())

    def log_metric(self, name: str, value: SupportsFloat) -> None:
        """Record a metric; logging a name again replaces its value."""
        self._register_exit_hook()
        checked_name, number = checked_metric(name, value)
        self._metrics[checked_name] = number

    def log_metrics(self, metrics: Mapping[str, SupportsFloat]) -> None:
        """Record several metrics; none is recorded when one is invalid."""
        self._register_exit_hook()
        checked = [checked_metric(name, value) for name, value in metrics.items()]
        self._metrics.update(checked)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self._metrics)

    def save_model(
        self,
        model: Any,
        path: str | Path | None = None,
        *,
        signature: Mapping[str, Any] | None = None,
        sample_input: ArrayLike | None = None,
        training_data: Any | None = None,
    ) -> SavedModel:
        """Save a fitted scikit-learn estimator into `path`, by default the run's output directory.

        The signature is inferred from `sample_input` (rows of model input) when not given, else
        from the dataset this run loaded when the model takes its features, else from the model.
        Metrics logged so far are recorded in the metadata too.

        The profile of the training data and of the model's predictions on it goes along
        (`baseline.json`): monitoring compares what the model is asked in production with it.
        `training_data`: the rows the model was trained on (an array or DataFrame of model
        input); by default the dataset this run loaded, when the model takes its features.
        """
        self._register_exit_hook()
        check_estimator(model)
        env = self.env
        directory = Path(path).absolute() if path is not None else env.output_dir
        chosen = self._signature(model, signature, sample_input)
        saved = write_model_dir(
            model,
            directory,
            signature=chosen,
            metrics=self._metrics,
            dataset=self._dataset_reference(),
            run=env.run,
            model=env.model,
            baseline=(baseline := self._baseline(model, chosen, training_data)),
        )
        uri = env.output_uri if directory == env.output_dir else file_uri(directory)
        digest, size = saved.digest, saved.manifest.size
        if uri.startswith(OBJECT_STORE_SCHEMES):
            digest, size = self._upload(directory, uri, saved.digest)
        self._artifact = {"uri": uri, "digest": digest, "size": size, "format": FORMAT}
        if baseline is not None:
            self._artifact["baseline"] = {
                "rows": baseline.rows,
                "features": len(baseline.features),
                "categorical": sum(h.kind == "categorical" for _, h in baseline.features),
                "predictions": baseline.prediction is not None,
            }
        return saved

    def _upload(self, directory: Path, uri: str, saved_digest: str) -> tuple[str, int]:
        """Upload the saved model; the digest and size are those of the bytes uploaded. A failure
        is left in the termination message for the operator, then raised."""
        from cairn.storage.s3 import ObjectStoreError  # boto3: only when needed
        from cairn.training.artifacts import UPLOAD_FAILED, upload_model

        try:
            uploaded = upload_model(directory, uri)
        except ObjectStoreError as error:
            message = f"the model was saved but not uploaded: {error}"
        else:
            if uploaded.digest == saved_digest:
                return uploaded.digest, uploaded.manifest.size
            message = (
                f"the files of {directory} changed while they were uploaded to {uri} "
                f"(saved as {saved_digest}, uploaded as {uploaded.digest}): save the model again"
            )
        self._write_termination(encode_failure(UPLOAD_FAILED, message))
        raise ArtifactUploadFailed(message)

    def _signature(
        self, model: Any, given: Mapping[str, Any] | None, sample: ArrayLike | None
    ) -> Signature:
        if given is not None:
            return checked_signature(given)
        if sample is None and self._dataset is not None:
            training = self._dataset
            if training.X.shape[1] == getattr(model, "n_features_in_", None):
                return infer_signature(model, training.X[:1], training.feature_names)
        return infer_signature(model, sample)

    def _baseline(self, model: Any, signature: Signature, given: Any | None) -> Profile | None:
        """The profile of the training data, or None when there is no data to profile (a
        model saved without data, or data that is not the model's input)."""
        model_input = signature["inputs"][0]
        width = model_input["shape"][-1] if model_input["shape"] else 0
        data = given
        if data is None and self._dataset is not None and self._dataset.X.shape[1] == width:
            data = self._dataset.X
        if data is None or width <= 0:
            return None
        rows = (
            data.iloc[sample_rows(len(data))]
            if hasattr(data, "iloc")
            else (np.asarray(data)[sample_rows(len(data))])
        )
        names = model_input.get("feature_names") or [f"x{i}" for i in range(width)]
        try:
            return build_profile(
                rows,
                names,
                predictions=model.predict(rows),
                classes=getattr(model, "classes_", None),
            )
        except ProfileError as error:
            raise ValueError(f"save_model(training_data=...): {error}") from None

    def _dataset_reference(self) -> dict[str, str] | None:
        if self._dataset is None:
            return None
        return {"uri": self._dataset.uri, "digest": self._dataset.digest}

    def _dataset_summary(self) -> dict[str, Any] | None:
        """The reference, with the rows and features the model card shows."""
        if self._dataset is None:
            return None
        X = self._dataset.X
        return {
            **(self._dataset_reference() or {}),
            "rows": int(X.shape[0]),
            "featureCount": int(X.shape[1]) if X.ndim > 1 else 1,
            "features": list(self._dataset.feature_names),
        }

    def summary(self) -> bytes:
        """The termination message: compact JSON within the kubelet's 4096-byte limit."""
        return encode_summary(
            self._metrics,
            self._artifact,
            self._dataset_summary(),
            self._evaluation,
            self.fairness or None,
        )

    def finish(self) -> dict[str, Any]:
        """Write the summary to the termination message and return it; calling again is harmless.

        Outside Kubernetes there is no termination message: the summary goes to stderr instead.
        """
        message = self.summary()
        if message != self._written:
            self._write_termination(message)
        summary: dict[str, Any] = json.loads(message)
        return summary

    def _write_termination(self, message: bytes) -> None:
        log = self.env.termination_log
        if log is None:
            print(
                f"cairn: not in a Kubernetes pod (no {contract.KUBERNETES_TERMINATION_LOG}, "
                f"{contract.TERMINATION_LOG} unset); run summary: {message.decode()}",
                file=sys.stderr,
            )
        else:
            log.write_bytes(message)
        self._written = message

    def _register_exit_hook(self) -> None:
        if self._finish_at_exit and not self._exit_hook_registered:
            atexit.register(self._finish_if_succeeded)
            self._exit_hook_registered = True

    def _finish_if_succeeded(self) -> None:
        # The interpreter stores an uncaught exception in sys.last_value (3.12+: last_exc too)
        # before exit hooks run. A failed run writes nothing, which leaves room for the log's
        # tail (terminationMessagePolicy: FallbackToLogsOnError). sys.exit(n) leaves no such
        # trace, so a script ending with sys.exit(1) still reports what it logged; the operator
        # judges success by the exit code.
        if getattr(sys, "last_exc", None) is None and getattr(sys, "last_value", None) is None:
            self.finish()


default_session = TrainingSession()
