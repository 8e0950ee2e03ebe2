"""A model's signature: its input and output tensors, named as the Open Inference Protocol does."""

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import numpy as np
from numpy.typing import ArrayLike

# Conventional names (MLServer, KServe): clients of those servers work unchanged.
INPUT_NAME = "input-0"
PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
DATATYPES = frozenset(
    {"BOOL", "BYTES", "FP16", "FP32", "FP64"}
    | {f"{sign}INT{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)}
)


class TensorSpec(TypedDict):
    name: str
    datatype: str
    shape: list[int]  # -1: any number of rows
    feature_names: NotRequired[list[str]]  # inputs, when known
    classes: NotRequired[list[Any]]  # predict_proba: the label of each column


class Signature(TypedDict):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class SignatureError(ValueError):
    """A signature that is malformed or cannot be inferred."""


def oip_datatype(dtype: np.dtype[Any]) -> str:
    """The Open Inference Protocol datatype of a numpy dtype."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8):
        return f"{'U' if dtype.kind == 'u' else ''}INT{dtype.itemsize * 8}"
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return f"FP{dtype.itemsize * 8}"
    if dtype.kind in "USO":
        return "BYTES"
    raise SignatureError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


def infer_signature(
    model: Any, sample: ArrayLike | None, feature_names: Sequence[str] | None = None
) -> Signature:
    """Inputs from `sample` (rows of model input), else from the model's n_features_in_;
    outputs from what the model predicts for the sample's first row, else from its classes_."""
    if sample is not None:
        rows = np.asarray(sample)
        if rows.ndim != 2 or rows.shape[0] == 0:
            raise SignatureError(
                f"sample_input must be a 2-D array with at least one row, not shape {rows.shape}"
            )
        n_features, input_type = rows.shape[1], oip_datatype(rows.dtype)
        predicted = np.asarray(model.predict(rows[:1]))
        predict = _tensor(PREDICT, oip_datatype(predicted.dtype), predicted.shape[1:])
    else:
        n_features = getattr(model, "n_features_in_", None)
        if not isinstance(n_features, int):
            raise SignatureError(
                f"cannot infer the signature of a {type(model).__name__}: "
                "pass sample_input= (a few rows of its input) or signature="
            )
        input_type = "FP64"  # what scikit-learn converts inputs to
        classes = getattr(model, "classes_", None)
        output_type = oip_datatype(np.asarray(classes).dtype) if classes is not None else "FP64"
        predict = _tensor(PREDICT, output_type, ())

    model_input = _tensor(INPUT_NAME, input_type, (n_features,))
    names = feature_names or getattr(model, "feature_names_in_", None)
    if names is not None and len(names) == n_features:
        model_input["feature_names"] = [str(name) for name in names]
    outputs = [predict]
    if (proba := _proba_output(model)) is not None:
        outputs.append(proba)
    return {"inputs": [model_input], "outputs": outputs}


def _tensor(name: str, datatype: str, trailing: Sequence[int]) -> TensorSpec:
    return {"name": name, "datatype": datatype, "shape": [-1, *(int(n) for n in trailing)]}


def _proba_output(model: Any) -> TensorSpec | None:
    # hasattr is False where scikit-learn hides the method (e.g. SVC(probability=False)).
    classes = getattr(model, "classes_", None)
    if not hasattr(model, PREDICT_PROBA) or not isinstance(classes, np.ndarray):
        return None
    if classes.ndim != 1:  # multi-output classifiers have one array of classes per output
        return None
    proba = _tensor(PREDICT_PROBA, "FP64", (len(classes),))
    proba["classes"] = classes.tolist()
    return proba


def checked_signature(signature: Mapping[str, Any]) -> Signature:
    """A signature given by the caller, once its tensors are well-formed."""
    checked: dict[str, list[TensorSpec]] = {}
    for side in ("inputs", "outputs"):
        tensors = signature.get(side)
        if not isinstance(tensors, list) or not tensors:
            raise SignatureError(f"signature[{side!r}] must be a non-empty list of tensors")
        checked[side] = [_checked_tensor(side, tensor) for tensor in tensors]
    return {"inputs": checked["inputs"], "outputs": checked["outputs"]}


def _checked_tensor(side: str, tensor: Any) -> TensorSpec:
    where = f"signature[{side!r}]: {tensor!r}"
    if not isinstance(tensor, Mapping):
        raise SignatureError(f"{where} is not a mapping with name, datatype and shape")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str) or not name:
        raise SignatureError(f"{where} needs a name")
    if datatype not in DATATYPES:
        raise SignatureError(f"{where}: datatype must be one of {', '.join(sorted(DATATYPES))}")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= -1 for n in shape)
    ):
        raise SignatureError(f"{where}: shape must be a list of sizes, -1 for any")
    spec: TensorSpec = {"name": name, "datatype": datatype, "shape": shape}
    if isinstance(feature_names := tensor.get("feature_names"), list):
        spec["feature_names"] = [str(feature) for feature in feature_names]
    if isinstance(classes := tensor.get("classes"), list):
        spec["classes"] = classes
    return spec
