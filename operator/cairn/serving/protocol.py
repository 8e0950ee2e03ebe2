"""Open Inference Protocol V2 and KServe V1 payloads: decoding requests, encoding responses.

Everything a client can get wrong raises ProtocolError with a 4xx status and a message that
names the problem; nothing here lets a malformed body through to the model.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from cairn.training.signature import PREDICT, PREDICT_PROBA, Signature, TensorSpec

# The protocol's datatypes this server accepts, with the numpy kinds their data may parse to.
_INT_RANGES = {
    f"{sign}INT{bits}": ((0, 2**bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    for sign in ("", "U")
    for bits in (8, 16, 32, 64)
}
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_TYPES = FLOAT_TYPES | frozenset(_INT_RANGES)
DATATYPES = NUMERIC_TYPES | frozenset({"BOOL", "BYTES"})
_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "BYTES": np.object_,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
} | {name: np.dtype(name.lower()) for name in _INT_RANGES}


class ProtocolError(Exception):
    """A request the server refuses: `status` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ProtocolError:
    return ProtocolError(400, message)


@dataclass(frozen=True)
class ModelSpec:
    """What the protocol needs to know about the served model, from its signature."""

    name: str
    version: str | None
    platform: str
    signature: Signature
    input: TensorSpec
    n_features: int
    columns: tuple[str, ...]  # names of column-style inputs, one per feature
    outputs: dict[str, TensorSpec]
    classes: tuple[Any, ...] | None

    @classmethod
    def from_signature(
        cls, name: str, version: str | None, platform: str, signature: Signature
    ) -> "ModelSpec":
        model_input = signature["inputs"][0]
        shape = model_input["shape"]
        n_features = shape[1] if len(shape) == 2 and shape[1] > 0 else 0
        names = model_input.get("feature_names") or [f"x{i}" for i in range(n_features)]
        outputs = {tensor["name"]: tensor for tensor in signature["outputs"]}
        proba = outputs.get(PREDICT_PROBA)
        classes = tuple(proba["classes"]) if proba and "classes" in proba else None
        return cls(
            name=name,
            version=version,
            platform=platform,
            signature=signature,
            input=model_input,
            n_features=n_features,
            columns=tuple(names),
            outputs=outputs,
            classes=classes,
        )

    @property
    def dtype(self) -> Any:
        return _DTYPES.get(self.input["datatype"], np.float64)

    def metadata(self) -> dict[str, Any]:
        """The protocol's model metadata response."""

        def tensor(spec: TensorSpec) -> dict[str, Any]:
            return {"name": spec["name"], "datatype": spec["datatype"], "shape": spec["shape"]}

        inputs = [tensor(spec) for spec in self.signature["inputs"]]
        outputs = [tensor(spec) for spec in self.signature["outputs"]]
        parameters: dict[str, Any] = {"columns": list(self.columns)}
        if self.classes is not None:
            parameters["classes"] = list(self.classes)
        return {
            "name": self.name,
            "versions": [self.version] if self.version else [],
            "platform": self.platform,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": parameters,
        }


@dataclass
class Decoded:
    """A request once decoded: rows in the model's input dtype and the outputs it asked for."""

    rows: NDArray[Any]
    outputs: tuple[str, ...]
    request_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def parse_json(body: bytes) -> Any:
    if not body:
        raise bad_request("the request has no body: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the body is not valid JSON: {error}") from None


def decode_v2(body: bytes, spec: ModelSpec) -> Decoded:
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise bad_request("the body must be a JSON object with 'inputs'")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("'id' must be a string")
    parameters = payload.get("parameters", {})
    if not isinstance(parameters, dict):
        raise bad_request("'parameters' must be an object")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("'inputs' must be a non-empty list of tensors")
    tensors = [_tensor(item, index) for index, item in enumerate(inputs)]
    rows = _rows(tensors, spec)
    return Decoded(rows, _outputs(payload.get("outputs"), spec), request_id, parameters)


@dataclass(frozen=True)
class _Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Any


def _tensor(item: Any, index: int) -> _Tensor:
    where = f"inputs[{index}]"
    if not isinstance(item, dict):
        raise bad_request(f"{where} must be an object with name, shape, datatype and data")
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise bad_request(f"{where} needs a 'name' (a string)")
    where = f"input {name!r}"
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise bad_request(f"{where}: 'shape' must be a list of non-negative integers")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise bad_request(
            f"{where}: 'datatype' {datatype!r} is not one of {', '.join(sorted(DATATYPES))}"
        )
    if "data" not in item:
        raise bad_request(f"{where} has no 'data'")
    parameters = item.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise bad_request(f"{where}: 'parameters' must be an object")
    return _Tensor(name, datatype, tuple(shape), item["data"])


def _rows(tensors: list[_Tensor], spec: ModelSpec) -> NDArray[Any]:
    names = [tensor.name for tensor in tensors]
    if len(set(names)) != len(names):
        raise bad_request(f"input names repeat: {names}")
    if len(tensors) == 1 and tensors[0].name == spec.input["name"]:
        return _row_style(tensors[0], spec)
    known = set(spec.columns)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise bad_request(
            f"unknown input {unknown[0]!r}: this model takes {spec.input['name']!r} "
            f"(shape {spec.input['shape']}) or one input per feature named "
            f"{', '.join(repr(column) for column in spec.columns)}"
        )
    return _column_style(tensors, spec)


def _row_style(tensor: _Tensor, spec: ModelSpec) -> NDArray[Any]:
    where = f"input {tensor.name!r}"
    if len(tensor.shape) != 2:
        raise bad_request(
            f"{where} has shape {list(tensor.shape)}: it must be [rows, {spec.n_features}]"
        )
    if spec.n_features and tensor.shape[1] != spec.n_features:
        raise bad_request(
            f"{where} has shape {list(tensor.shape)}: the model takes {spec.n_features} features"
            f" per row, shape [rows, {spec.n_features}]"
        )
    array = _array(tensor, spec)
    if array.shape[0] == 0:
        raise bad_request(f"{where} has no rows")
    return array


def _column_style(tensors: list[_Tensor], spec: ModelSpec) -> NDArray[Any]:
    missing = [column for column in spec.columns if column not in {t.name for t in tensors}]
    if missing:
        raise bad_request(
            f"column-style inputs need every feature: missing {', '.join(map(repr, missing))}"
        )
    by_name = {}
    n_rows: int | None = None
    for tensor in tensors:
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise bad_request(
                f"input {tensor.name!r} has shape {list(tensor.shape)}: a column is [rows] "
                "or [rows, 1]"
            )
        column = _array(tensor, spec).reshape(-1)
        if n_rows is not None and len(column) != n_rows:
            raise bad_request(
                f"input {tensor.name!r} has {len(column)} rows, the other columns {n_rows}"
            )
        n_rows = len(column)
        by_name[tensor.name] = column
    if not n_rows:
        raise bad_request("the inputs have no rows")
    return np.column_stack([by_name[column] for column in spec.columns])


def _array(tensor: _Tensor, spec: ModelSpec) -> NDArray[Any]:
    """The tensor's data as an array of its shape, in the model's input dtype."""
    where = f"input {tensor.name!r}"
    wanted = spec.input["datatype"]
    if not _compatible(tensor.datatype, wanted):
        raise bad_request(f"{where} has datatype {tensor.datatype}; the model takes {wanted}")
    data = tensor.data
    if not isinstance(data, list):
        data = [data]
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        raise bad_request(f"{where}: 'data' is not a regular (non-ragged) array") from None
    expected = math.prod(tensor.shape)
    if array.size != expected:
        raise bad_request(
            f"{where}: 'data' holds {array.size} values, shape {list(tensor.shape)} needs "
            f"{expected}"
        )
    array = _checked_values(array, tensor.datatype, where).reshape(tensor.shape)
    try:
        return array.astype(spec.dtype, copy=False)
    except (ValueError, TypeError, OverflowError):
        raise bad_request(f"{where}: values cannot be converted to {wanted}") from None


def _compatible(given: str, wanted: str) -> bool:
    if wanted in FLOAT_TYPES:
        return given in NUMERIC_TYPES
    if wanted in _INT_RANGES:
        return given in _INT_RANGES
    return given == wanted


def _checked_values(array: NDArray[Any], datatype: str, where: str) -> NDArray[Any]:
    kind = array.dtype.kind
    if datatype == "BYTES":
        if kind not in "US" or array.dtype == object:
            raise bad_request(f"{where}: BYTES data must be strings")
        return array.astype(object)
    if datatype == "BOOL":
        if kind != "b":
            raise bad_request(f"{where}: BOOL data must be true or false")
        return array
    if kind == "b" or kind not in "iuf":
        raise bad_request(f"{where}: {datatype} data must be numbers")
    if datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        if kind == "f" or (array.size and (array.min() < low or array.max() > high)):
            raise bad_request(f"{where}: {datatype} data must be integers in [{low}, {high}]")
        return array
    if kind == "f" and not np.isfinite(array).all():
        raise bad_request(f"{where}: values must be finite numbers")
    if kind == "f" and datatype != "FP64":
        with np.errstate(over="ignore"):
            narrowed = array.astype(_DTYPES[datatype])
        if not np.isfinite(narrowed).all():
            raise bad_request(f"{where}: values out of the range of {datatype}")
    return array


def _outputs(requested: Any, spec: ModelSpec) -> tuple[str, ...]:
    if requested is None:
        return tuple(spec.outputs)
    if not isinstance(requested, list) or not requested:
        raise bad_request("'outputs' must be a non-empty list of {\"name\": ...} objects")
    names = []
    for index, item in enumerate(requested):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise bad_request(f"outputs[{index}] must be an object with a 'name'")
        if name not in spec.outputs:
            raise bad_request(
                f"unknown output {name!r}: this model has {', '.join(map(repr, spec.outputs))}"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def encode_v2(
    spec: ModelSpec, decoded: Decoded, results: dict[str, NDArray[Any]]
) -> dict[str, Any]:
    outputs = []
    for name in decoded.outputs:
        value = results[name]
        outputs.append(
            {
                "name": name,
                "datatype": spec.outputs[name]["datatype"],
                "shape": list(value.shape),
                "data": _flat(value),
            }
        )
    response: dict[str, Any] = {"model_name": spec.name, "outputs": outputs}
    if spec.version:
        response["model_version"] = spec.version
    if decoded.request_id is not None:
        response["id"] = decoded.request_id
    return response


def _flat(value: NDArray[Any]) -> Any:
    flat = value.reshape(-1)
    # orjson serializes numeric arrays natively; other kinds go through Python objects.
    if flat.dtype.kind in "biuf":
        return flat
    return [item.decode() if isinstance(item, bytes) else item for item in flat.tolist()]


def decode_v1(body: bytes, spec: ModelSpec) -> Decoded:
    payload = parse_json(body)
    if not isinstance(payload, dict) or "instances" not in payload:
        raise bad_request('the body must be a JSON object {"instances": [[...], ...]}')
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise bad_request("'instances' must be a non-empty list of rows")
    if all(isinstance(row, dict) for row in instances):
        instances = _rows_from_objects(instances, spec)
    datatype = spec.input["datatype"]
    tensor = _Tensor(spec.input["name"], datatype, (len(instances), spec.n_features), instances)
    if not all(isinstance(row, list) and len(row) == spec.n_features for row in instances):
        raise bad_request(
            f"each instance must be a list of {spec.n_features} values (or an object keyed by "
            f"the feature names {', '.join(map(repr, spec.columns))})"
        )
    if datatype in NUMERIC_TYPES:
        # V1 has no datatypes: JSON numbers are read as the widest type of the model's kind.
        natural = "FP64" if datatype in FLOAT_TYPES else "INT64"
        tensor = _Tensor(tensor.name, natural, tensor.shape, instances)
    return Decoded(_array(tensor, spec), (PREDICT,))


def _rows_from_objects(instances: list[dict[str, Any]], spec: ModelSpec) -> list[list[Any]]:
    rows = []
    for index, instance in enumerate(instances):
        missing = [column for column in spec.columns if column not in instance]
        extra = [key for key in instance if key not in spec.columns]
        if missing or extra:
            raise bad_request(
                f"instances[{index}]: "
                + (f"missing {', '.join(map(repr, missing))} " if missing else "")
                + (f"unknown {', '.join(map(repr, extra))}" if extra else "")
            )
        rows.append([instance[column] for column in spec.columns])
    return rows


def encode_v1(results: dict[str, NDArray[Any]]) -> dict[str, Any]:
    return {"predictions": _flat(results[PREDICT])}


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def split_outputs(
    results: dict[str, NDArray[Any]], sizes: Sequence[int]
) -> list[dict[str, NDArray[Any]]]:
    """Per-request results of a batch, in order: each request gets its own rows back."""
    parts: list[dict[str, NDArray[Any]]] = [{} for _ in sizes]
    offsets = np.cumsum([0, *sizes])
    for name, value in results.items():
        for index, part in enumerate(parts):
            part[name] = value[offsets[index] : offsets[index + 1]]
    return parts
