"""Model runtimes: the model's own library (scikit-learn, or XGBoost and LightGBM through their
scikit-learn wrappers), ONNX Runtime on the same model converted at load time (skl2onnx, with
onnxmltools' converters for XGBoost and LightGBM registered into it), or, for scikit-learn's
linear models, their decision function computed directly (cairn.serving.linear).

The converted model is used only once it agrees with the original on a signature-shaped sample
that includes every split threshold of tree models and its neighbours (cairn.serving.splits):
identical class labels (or predictions within PREDICT_RTOL, PREDICT_RTOL_FP32 for a model that
predicts in float32) and probabilities within PROBA_ATOL. Anything else — a model that cannot be
converted, a mismatch, a missing package — falls back to the model's own library with a log line
saying why. (onnxmltools converts boosters to float32 inputs and thresholds: exactly what XGBoost
computes, not what LightGBM does with float64 inputs, so LightGBM is mostly served natively.)
"""

import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from cairn.serving.splits import split_thresholds
from cairn.training.signature import PREDICT, PREDICT_PROBA, Signature

log = logging.getLogger("cairn.serving")

# The tolerances the ONNX runtime is held to against the original model on the verification
# sample. A model that predicts in float32 (XGBoost) is held to float32's precision.
PROBA_ATOL = 1e-6
PREDICT_RTOL = 1e-9
PREDICT_RTOL_FP32 = 1e-5
VERIFY_ROWS = 512  # at least; as many as the feature with the most candidate values needs
VERIFY_MAX_ROWS = 20_000
# ai.onnx.ml opset 3 lets tree ensembles take double inputs and thresholds, so their
# comparisons are the ones scikit-learn makes.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


class Runtime(Protocol):
    name: str
    single_threaded: bool  # computes on the calling thread only

    def predict(self, rows: NDArray[Any], outputs: Iterable[str]) -> dict[str, NDArray[Any]]:
        """The requested outputs (PREDICT, PREDICT_PROBA) for `rows`, each row by row."""
        ...


class SklearnRuntime:
    """The model's own predict and predict_proba (scikit-learn's API, which XGBoost's and
    LightGBM's scikit-learn wrappers have too)."""

    # scikit-learn (n_jobs, BLAS) and the boosters may compute on threads of their own.
    single_threaded = False

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        # What runs it: sklearn, xgboost or lightgbm (the metrics' model info says so).
        library = _library(estimator)
        self.name = "sklearn" if library == "scikit-learn" else library

    def predict(self, rows: NDArray[Any], outputs: Iterable[str]) -> dict[str, NDArray[Any]]:
        result: dict[str, NDArray[Any]] = {}
        for output in outputs:
            if output == PREDICT:
                result[output] = np.asarray(self.estimator.predict(rows))
            elif output == PREDICT_PROBA:
                result[output] = np.asarray(self.estimator.predict_proba(rows))
        return result


class OnnxRuntime:
    name = "onnx"
    single_threaded = True  # one intra-op and one inter-op thread: the caller's (see convert)

    def __init__(
        self,
        session: Any,
        input_name: str,
        label: str,
        proba: str | None,
        round_to_float32: bool = False,
        float32_input: bool = False,
    ) -> None:
        self._session = session
        self._round_to_float32 = round_to_float32
        self._float32_input = float32_input
        self._input = input_name
        self._names = {PREDICT: label} | ({PREDICT_PROBA: proba} if proba else {})
        # Classifiers give both outputs in one run: always ask for both.
        self._all = list(self._names.values())
        self._index = {output: self._all.index(name) for output, name in self._names.items()}

    def predict(self, rows: NDArray[Any], outputs: Iterable[str]) -> dict[str, NDArray[Any]]:
        if self._round_to_float32:
            # What scikit-learn's trees do to their input before comparing it with their
            # (double) thresholds: the comparisons are then exactly scikit-learn's.
            rows = rows.astype(np.float32).astype(np.float64)
        elif self._float32_input:
            rows = rows.astype(np.float32)
        values = self._session.run(self._all, {self._input: rows})
        result: dict[str, NDArray[Any]] = {}
        for output in outputs:
            if output in self._index:
                value = values[self._index[output]]
                result[output] = value.reshape(-1) if output == PREDICT else value
        return result


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: Runtime
    reason: str


def choose_runtime(estimator: Any, signature: Signature, wanted: str) -> RuntimeChoice:
    """`wanted`: auto, onnx or sklearn. ONNX is used only when it converts and verifies; with
    auto, a linear model is computed directly when that verifies."""
    fallback = SklearnRuntime(estimator)
    library = _library(estimator)
    if wanted == "sklearn":
        return RuntimeChoice(fallback, f"{library} (--runtime sklearn)")
    if wanted == "auto":
        linear = _linear(estimator, signature, fallback)
        if linear is not None:
            return linear
    try:
        started = time.perf_counter()
        onnx_runtime = convert(estimator, signature)
        sample = verification_sample(estimator, signature)
        verify(onnx_runtime, fallback, sample, signature)
    except Exception as error:  # any failure of an optional accelerator means: do without it
        reason = f"{library}: ONNX Runtime not used ({type(error).__name__}: {error})"
        log.warning("runtime %s", reason)
        return RuntimeChoice(fallback, reason)
    took = time.perf_counter() - started
    reason = (
        f"ONNX Runtime: converted with skl2onnx in {took:.2f}s and verified against {library} "
        f"on {len(sample)} signature-shaped rows (labels identical, probabilities within "
        f"{PROBA_ATOL:g})"
    )
    return RuntimeChoice(onnx_runtime, reason)


def _linear(estimator: Any, signature: Signature, reference: Runtime) -> RuntimeChoice | None:
    """The linear runtime for one of scikit-learn's linear models that it agrees with on the
    verification sample; None for any other model (and, logged, for one that disagrees)."""
    from cairn.serving.linear import NotLinear, is_linear, linear_runtime

    if not is_linear(estimator):
        return None
    try:
        sample = verification_sample(estimator, signature)
        runtime = linear_runtime(estimator, signature, sample, PROBA_ATOL)
        verify(runtime, reference, sample, signature)
    except NotLinear as why:
        log.info("runtime: not computed directly (%s)", why)
        return None
    except Exception as error:  # a disagreement, or a bug: ONNX Runtime is tried next
        log.warning("runtime: not computed directly (%s: %s)", type(error).__name__, error)
        return None
    name = type(estimator).__name__
    return RuntimeChoice(
        runtime,
        f"linear: {name}'s decision function computed directly, as scikit-learn computes it, "
        f"and verified against scikit-learn on {len(sample)} signature-shaped rows (labels "
        f"identical, probabilities within {PROBA_ATOL:g})",
    )


def _library(estimator: Any) -> str:
    root = type(estimator).__module__.split(".")[0]
    return root if root in ("xgboost", "lightgbm") else "scikit-learn"


class ConversionError(Exception):
    """The model cannot run on ONNX Runtime as it runs on scikit-learn."""


_registered = False


def _register_booster_converters() -> None:
    """onnxmltools' XGBoost and LightGBM converters, made known to skl2onnx (also inside a
    Pipeline). Only libraries already loaded (by unpickling a model of theirs) are registered."""
    global _registered
    if _registered:
        return
    _registered = True
    from skl2onnx import update_registered_converter  # type: ignore[import-untyped]
    from skl2onnx.common.shape_calculator import (  # type: ignore[import-untyped]
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if "xgboost" in sys.modules:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import (  # type: ignore[import-untyped]
            convert_xgboost,
        )
        from xgboost import XGBClassifier, XGBRegressor

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=options,
        )
        update_registered_converter(
            XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    if "lightgbm" in sys.modules:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (  # type: ignore[import-untyped]
            convert_lightgbm,
        )

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=options,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )


def convert(estimator: Any, signature: Signature) -> OnnxRuntime:
    inputs = signature["inputs"]
    if len(inputs) != 1 or inputs[0]["datatype"] == "BYTES" or len(inputs[0]["shape"]) != 2:
        raise ConversionError("only models of one numeric 2-D input are converted")
    # Imported here: they cost startup time and memory only when used.
    import onnxruntime  # type: ignore[import-untyped]
    from skl2onnx import to_onnx

    _register_booster_converters()
    n_features = inputs[0]["shape"][1]
    # Boosters' converters take float32 inputs only (what XGBoost computes with anyway).
    float32_input = _library(estimator) != "scikit-learn"
    example = np.zeros((1, n_features), dtype=np.float32 if float32_input else np.float64)
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    model = to_onnx(estimator, example, options=options, target_opset=TARGET_OPSET)
    session_options = onnxruntime.SessionOptions()
    # One request batch at a time: threads would only compete with the HTTP event loop.
    session_options.intra_op_num_threads = 1
    session_options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), session_options, providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    proba = "probabilities" if "probabilities" in names else None
    if "label" in names:
        label = "label"
    elif "variable" in names:
        label = "variable"
    else:
        raise ConversionError(f"unexpected ONNX outputs {names}")
    round_to_float32 = not float32_input and split_thresholds(estimator, n_features) is not None
    return OnnxRuntime(
        session, session.get_inputs()[0].name, label, proba, round_to_float32, float32_input
    )


def verification_sample(estimator: Any, signature: Signature) -> NDArray[np.float64]:
    """Rows shaped like the signature's input, spread where the model makes its decisions.

    Tree ensembles: per feature, the midpoints between consecutive split thresholds and values
    beyond the outermost ones, so every region the trees distinguish is visited, and each
    threshold itself with its nearest neighbours on either side (in float64 and in float32),
    where a runtime comparing in another precision, or with < for <=, would go the other way.
    Other models: values at several scales around zero and around any scaler's mean.
    Every candidate value of every feature is in some row (up to VERIFY_MAX_ROWS rows), the
    features' values paired at random.
    """
    n_features = signature["inputs"][0]["shape"][1]
    rng = np.random.default_rng(0)
    thresholds = split_thresholds(estimator, n_features)
    per_feature = []
    for feature in range(n_features):
        cuts = thresholds[feature] if thresholds else np.empty(0)
        if cuts.size:
            spread = max(float(cuts[-1] - cuts[0]), 1.0)
            single = cuts.astype(np.float32)
            candidates = np.concatenate(
                [
                    (cuts[1:] + cuts[:-1]) / 2,
                    [cuts[0] - spread, cuts[-1] + spread],
                    cuts,
                    np.nextafter(cuts, np.inf),
                    np.nextafter(cuts, -np.inf),
                    np.nextafter(single, np.float32(np.inf)).astype(np.float64),
                    np.nextafter(single, np.float32(-np.inf)).astype(np.float64),
                ]
            )
        else:
            candidates = np.concatenate(
                [rng.normal(0, scale, 64) for scale in (0.1, 1, 10, 100)] + [np.arange(-5, 11)]
            )
        per_feature.append(candidates)
    rows = min(max(VERIFY_ROWS, *(len(c) for c in per_feature)), VERIFY_MAX_ROWS)
    columns = [
        rng.permutation(np.resize(candidates, rows))
        if len(candidates) <= rows
        else rng.choice(candidates, rows, replace=False)
        for candidates in per_feature
    ]
    return np.column_stack(columns).astype(np.float64)


def verify(
    candidate: Runtime, reference: Runtime, sample: NDArray[Any], signature: Signature
) -> None:
    outputs = [tensor["name"] for tensor in signature["outputs"]]
    expected = reference.predict(sample, outputs)
    actual = candidate.predict(sample, outputs)
    for output, want in expected.items():
        got = actual.get(output)
        if got is None or got.shape != want.shape:
            raise ConversionError(f"{output}: ONNX gives shape {getattr(got, 'shape', None)}")
        if output == PREDICT_PROBA:
            worst = float(np.max(np.abs(got - want))) if want.size else 0.0
            if not worst <= PROBA_ATOL:
                raise ConversionError(f"probabilities differ by up to {worst:g} > {PROBA_ATOL:g}")
        elif want.dtype.kind in "fc":
            rtol, atol = PREDICT_RTOL, 0.0
            if want.dtype.itemsize <= 4:
                # float32 sums of many leaves: an error relative to the predictions' scale, as
                # large near zero as anywhere.
                rtol = PREDICT_RTOL_FP32
                atol = rtol * float(np.abs(want).max()) if want.size else 0.0
            if not np.allclose(got, want, rtol=rtol, atol=atol):
                raise ConversionError(f"predictions differ beyond rtol {rtol:g}")
        elif not np.array_equal(got.astype(want.dtype), want):
            differ = int(np.sum(got.astype(want.dtype) != want))
            raise ConversionError(f"{differ} of {len(want)} class labels differ")
