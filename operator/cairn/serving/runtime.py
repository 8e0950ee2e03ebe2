"""Model runtimes: scikit-learn itself, or ONNX Runtime on the same model converted at load time.

The converted model is used only once it agrees with the original on a signature-shaped sample:
identical class labels (or predictions within PREDICT_RTOL for regressors) and probabilities
within PROBA_ATOL. Anything else — a model skl2onnx cannot convert, a mismatch, a missing
package — falls back to scikit-learn with a log line saying why.
"""

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from cairn.training.signature import PREDICT, PREDICT_PROBA, Signature

log = logging.getLogger("cairn.serving")

# The tolerances the ONNX runtime is held to against scikit-learn on the verification sample.
PROBA_ATOL = 1e-6
PREDICT_RTOL = 1e-9
VERIFY_ROWS = 512
# ai.onnx.ml opset 3 lets tree ensembles take double inputs and thresholds, so their
# comparisons are the ones scikit-learn makes.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


class Runtime(Protocol):
    name: str

    def predict(self, rows: NDArray[Any], outputs: Iterable[str]) -> dict[str, NDArray[Any]]:
        """The requested outputs (PREDICT, PREDICT_PROBA) for `rows`, each row by row."""
        ...


class SklearnRuntime:
    name = "sklearn"

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

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

    def __init__(
        self,
        session: Any,
        input_name: str,
        label: str,
        proba: str | None,
        float32_inputs: bool = False,
    ) -> None:
        self._session = session
        self._float32_inputs = float32_inputs
        self._input = input_name
        self._names = {PREDICT: label} | ({PREDICT_PROBA: proba} if proba else {})
        # Classifiers give both outputs in one run: always ask for both.
        self._all = list(self._names.values())
        self._index = {output: self._all.index(name) for output, name in self._names.items()}

    def predict(self, rows: NDArray[Any], outputs: Iterable[str]) -> dict[str, NDArray[Any]]:
        if self._float32_inputs:
            # What scikit-learn's trees do to their input before comparing it with their
            # (double) thresholds: the comparisons are then exactly scikit-learn's.
            rows = rows.astype(np.float32).astype(np.float64)
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
    """`wanted`: auto, onnx or sklearn. ONNX is used only when it converts and verifies."""
    fallback = SklearnRuntime(estimator)
    if wanted == "sklearn":
        return RuntimeChoice(fallback, "scikit-learn (--runtime sklearn)")
    try:
        started = time.perf_counter()
        onnx_runtime = convert(estimator, signature)
        sample = verification_sample(estimator, signature)
        verify(onnx_runtime, fallback, sample, signature)
    except Exception as error:  # any failure of an optional accelerator means: do without it
        reason = f"scikit-learn: ONNX Runtime not used ({type(error).__name__}: {error})"
        log.warning("runtime %s", reason)
        return RuntimeChoice(fallback, reason)
    took = time.perf_counter() - started
    reason = (
        f"ONNX Runtime: converted with skl2onnx in {took:.2f}s and verified on {len(sample)} "
        f"signature-shaped rows (labels identical, probabilities within {PROBA_ATOL:g})"
    )
    return RuntimeChoice(onnx_runtime, reason)


class ConversionError(Exception):
    """The model cannot run on ONNX Runtime as it runs on scikit-learn."""


def convert(estimator: Any, signature: Signature) -> OnnxRuntime:
    inputs = signature["inputs"]
    if len(inputs) != 1 or inputs[0]["datatype"] == "BYTES" or len(inputs[0]["shape"]) != 2:
        raise ConversionError("only models of one numeric 2-D input are converted")
    # Imported here: they cost startup time and memory only when used.
    import onnxruntime  # type: ignore[import-untyped]
    from skl2onnx import to_onnx  # type: ignore[import-untyped]

    n_features = inputs[0]["shape"][1]
    example = np.zeros((1, n_features), dtype=np.float64)
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
    float32_inputs = _tree_thresholds(estimator, n_features) is not None
    return OnnxRuntime(session, session.get_inputs()[0].name, label, proba, float32_inputs)


def verification_sample(estimator: Any, signature: Signature) -> NDArray[np.float64]:
    """Rows shaped like the signature's input, spread where the model makes its decisions.

    Tree ensembles: per feature, the midpoints between consecutive split thresholds and values
    beyond the outermost ones, so every region the trees distinguish is visited. Other models:
    values at several scales around zero and around any scaler's mean.
    """
    n_features = signature["inputs"][0]["shape"][1]
    rng = np.random.default_rng(0)
    thresholds = _tree_thresholds(estimator, n_features)
    columns = []
    for feature in range(n_features):
        cuts = thresholds[feature] if thresholds else np.empty(0)
        if cuts.size:
            spread = max(float(cuts[-1] - cuts[0]), 1.0)
            candidates = np.concatenate(
                [(cuts[1:] + cuts[:-1]) / 2, [cuts[0] - spread, cuts[-1] + spread]]
            )
        else:
            candidates = np.concatenate(
                [rng.normal(0, scale, 64) for scale in (0.1, 1, 10, 100)] + [np.arange(-5, 11)]
            )
        columns.append(rng.choice(candidates, VERIFY_ROWS))
    return np.column_stack(columns).astype(np.float64)


def _tree_thresholds(estimator: Any, n_features: int) -> list[NDArray[np.float64]] | None:
    trees = [
        tree
        for tree in (getattr(estimator, "estimators_", None) or [estimator])
        if hasattr(tree, "tree_")
    ]
    if not trees:
        return None
    by_feature: list[list[NDArray[np.float64]]] = [[] for _ in range(n_features)]
    for tree in trees:
        features, thresholds = tree.tree_.feature, tree.tree_.threshold
        for feature in range(n_features):
            by_feature[feature].append(thresholds[features == feature])
    return [np.unique(np.concatenate(parts)) for parts in by_feature]


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
            if not np.allclose(got, want, rtol=PREDICT_RTOL, atol=0):
                raise ConversionError(f"predictions differ beyond rtol {PREDICT_RTOL:g}")
        elif not np.array_equal(got.astype(want.dtype), want):
            differ = int(np.sum(got.astype(want.dtype) != want))
            raise ConversionError(f"{differ} of {len(want)} class labels differ")
