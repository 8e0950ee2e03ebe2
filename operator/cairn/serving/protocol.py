"""Open Inference Protocol V2 and KServe V1 payloads: decoding requests, encoding responses.

V2 requests are JSON, optionally followed by tensors in the binary tensor extension's raw layout
(cairn.serving.tensors); gRPC requests are decoded into the same InputTensor values
(cairn.serving.grpc.codec), so that every protocol is checked by the same rules.

Everything a client can get wrong raises ProtocolError with a 4xx status and a message that
names the problem; nothing here lets a malformed body through to the model.
"""

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from cairn.serving.tensors import RawTensorError, from_raw, to_raw
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


# The binary tensor extension's parameters.
BINARY_DATA_SIZE = "binary_data_size"
BINARY_DATA = "binary_data"
BINARY_DATA_OUTPUT = "binary_data_output"


class ProtocolError(Exception):
    """A request the server refuses: `status` is the HTTP status, the message says why."""

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


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

    @cached_property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = np.dtype(_DTYPES.get(self.input["datatype"], np.float64))
        return dtype

    @cached_property
    def input_name(self) -> str:
        return self.input["name"]

    @cached_property
    def input_datatype(self) -> str:
        return self.input["datatype"]

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
    binary_outputs: frozenset[str] = frozenset()  # outputs to answer in the raw layout


class InputTensor(NamedTuple):
    """One input tensor as a request gave it: `data` is JSON data (nested lists or one value),
    or an array when the tensor came in the raw layout or as gRPC typed contents."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Any


def parse_json(body: bytes) -> Any:
    if not body:
        raise bad_request("the request has no body: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        hint = ""
        if "UTF-8" in str(error):
            hint = (
                " (tensors in the binary tensor extension need the "
                "Inference-Header-Content-Length header: the size of the JSON before them)"
            )
        raise bad_request(f"the body is not valid JSON: {error}{hint}") from None


def decode_v2(body: bytes, spec: ModelSpec, json_length: int | None = None) -> Decoded:
    """`json_length`: the Inference-Header-Content-Length of a request in the binary tensor
    extension, whose inputs with a binary_data_size follow the JSON, in order."""
    binary = b""
    if json_length is not None:
        if not 0 <= json_length <= len(body):
            raise bad_request(
                f"Inference-Header-Content-Length is {json_length}; the body has {len(body)} bytes"
            )
        binary, body = body[json_length:], body[:json_length]
    payload = parse_json(body)
    if json_length is None:
        simple = _decode_simple(payload, spec)
        if simple is not None:
            return simple
    return decode_payload(payload, spec, json_length, binary)


def decode_payload(
    payload: Any, spec: ModelSpec, json_length: int | None = None, binary: bytes = b""
) -> Decoded:
    """A V2 request's parsed JSON, with the binary data that follows it (binary_data_size)."""
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
    if json_length is None:
        tensors = [_tensor(item, index, _NO_BINARY) for index, item in enumerate(inputs)]
    else:
        reader = _BinaryReader(binary)
        tensors = [_tensor(item, index, reader) for index, item in enumerate(inputs)]
        reader.finish()
    return decode_tensors(
        tensors, _requested_outputs(payload.get("outputs")), spec, request_id, parameters
    )


def _decode_simple(payload: Any, spec: ModelSpec) -> Decoded | None:
    """The request nearly every client sends, decoded in one pass: one row-style FP64 input for a
    model that takes FP64, its data a list, outputs named without parameters, no parameters.
    None for anything else (and anything wrong), which decode_payload decodes or refuses with a
    message: this accepts only what it would accept, with the same result."""
    if type(payload) is not dict or "parameters" in payload:
        return None
    inputs = payload.get("inputs")
    request_id = payload.get("id")
    if (
        type(inputs) is not list
        or len(inputs) != 1
        or not (request_id is None or type(request_id) is str)
    ):
        return None
    item = inputs[0]
    if type(item) is not dict or "parameters" in item or item.get("name") != spec.input_name:
        return None
    shape, data = item.get("shape"), item.get("data")
    if (
        item.get("datatype") != "FP64"
        or spec.input_datatype != "FP64"
        or type(shape) is not list
        or len(shape) != 2
        or type(data) is not list
    ):
        return None
    n_rows, n_columns = shape
    if (
        type(n_rows) is not int
        or type(n_columns) is not int
        or n_rows <= 0
        or n_columns < 0
        or (spec.n_features and n_columns != spec.n_features)
    ):
        return None
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        return None
    # Numbers from orjson: never NaN or infinite.
    if array.dtype.kind not in "iuf" or array.size != n_rows * n_columns:
        return None
    if array.shape != (n_rows, n_columns):
        array = array.reshape(n_rows, n_columns)
    if array.dtype != spec.dtype:
        array = array.astype(spec.dtype)
    requested = payload.get("outputs")
    if requested is None:
        return Decoded(array, tuple(spec.outputs), request_id, {}, frozenset())
    if type(requested) is not list or not requested:
        return None
    names: list[str] = []
    for output in requested:
        if type(output) is not dict or len(output) != 1:
            return None
        name = output.get("name")
        if type(name) is not str or name not in spec.outputs:
            return None
        if name not in names:
            names.append(name)
    return Decoded(array, tuple(names), request_id, {}, frozenset())


def decode_tensors(
    tensors: list[InputTensor],
    requested: list[tuple[str, dict[str, Any]]] | None,
    spec: ModelSpec,
    request_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> Decoded:
    """A V2 request from its parts, whichever protocol carried them. `requested`: the outputs
    asked for with their parameters, None for all."""
    parameters = parameters or {}
    rows = _rows(tensors, spec)
    outputs, binary = _outputs(requested, spec, parameters.get(BINARY_DATA_OUTPUT, False))
    return Decoded(rows, outputs, request_id, parameters, binary)


class _BinaryReader:
    """The binary part of a request, handed out in the order of the inputs that have it."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def take(self, size: int, where: str) -> bytes:
        if self._offset + size > len(self._data):
            raise bad_request(
                f"{where}: binary_data_size {size} runs past the end of the binary data "
                f"({len(self._data) - self._offset} bytes left)"
            )
        chunk = self._data[self._offset : self._offset + size].tobytes()
        self._offset += size
        return chunk

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise bad_request(
                f"the body has {len(self._data) - self._offset} bytes after the JSON that no "
                "input's binary_data_size accounts for"
            )


# The reader of a body without binary data: any binary_data_size runs past its end.
_NO_BINARY = _BinaryReader(b"")


def _tensor(item: Any, index: int, binary: _BinaryReader) -> InputTensor:
    # Messages are formatted only for a request that gets one: this runs for every input.
    if not isinstance(item, dict):
        raise bad_request(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise bad_request(f"inputs[{index}] needs a 'name' (a string)")
    if not isinstance(shape, list) or not _is_shape(shape):
        raise bad_request(f"input {name!r}: 'shape' must be a list of non-negative integers")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise bad_request(
            f"input {name!r}: 'datatype' {datatype!r} is not one of {', '.join(sorted(DATATYPES))}"
        )
    parameters = item.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise bad_request(f"input {name!r}: 'parameters' must be an object")
    size = parameters.get(BINARY_DATA_SIZE) if parameters else None
    if size is not None:
        where = f"input {name!r}"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request(f"{where}: 'binary_data_size' must be a non-negative integer")
        if "data" in item:
            raise bad_request(f"{where} has both 'data' and a binary_data_size: send one")
        data = raw_tensor(binary.take(size, where), datatype, tuple(shape), where)
        return InputTensor(name, datatype, tuple(shape), data)
    data = item.get("data", _MISSING)
    if data is _MISSING:
        raise bad_request(f"input {name!r} has no 'data'")
    return InputTensor(name, datatype, tuple(shape), data)


_MISSING = object()


def _is_shape(shape: list[Any]) -> bool:
    """Non-negative integers (not booleans)."""
    for size in shape:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return False
    return True


def raw_tensor(raw: bytes, datatype: str, shape: tuple[int, ...], where: str) -> NDArray[Any]:
    """A tensor in the raw layout, as an array; BYTES elements must be UTF-8 text."""
    try:
        array = from_raw(raw, datatype, shape)
    except RawTensorError as error:
        raise bad_request(f"{where}: {error}") from None
    if datatype == "BYTES":
        try:
            text = [item.decode() for item in array.reshape(-1)]
            return np.array(text, dtype=str).reshape(shape)
        except UnicodeDecodeError:
            raise bad_request(f"{where}: BYTES elements must be UTF-8 text") from None
    return array


def _rows(tensors: list[InputTensor], spec: ModelSpec) -> NDArray[Any]:
    if len(tensors) == 1 and tensors[0].name == spec.input_name:
        return _row_style(tensors[0], spec)  # (one name cannot repeat)
    names = [tensor.name for tensor in tensors]
    if len(set(names)) != len(names):
        raise bad_request(f"input names repeat: {names}")
    known = set(spec.columns)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise bad_request(
            f"unknown input {unknown[0]!r}: this model takes {spec.input['name']!r} "
            f"(shape {spec.input['shape']}) or one input per feature named "
            f"{', '.join(repr(column) for column in spec.columns)}"
        )
    return _column_style(tensors, spec)


def _row_style(tensor: InputTensor, spec: ModelSpec) -> NDArray[Any]:
    shape = tensor.shape
    if len(shape) != 2:
        raise bad_request(
            f"input {tensor.name!r} has shape {list(shape)}: it must be [rows, {spec.n_features}]"
        )
    if spec.n_features and shape[1] != spec.n_features:
        raise bad_request(
            f"input {tensor.name!r} has shape {list(shape)}: the model takes {spec.n_features} "
            f"features per row, shape [rows, {spec.n_features}]"
        )
    array = _array(tensor, spec)
    if array.shape[0] == 0:
        raise bad_request(f"input {tensor.name!r} has no rows")
    return array


def _column_style(tensors: list[InputTensor], spec: ModelSpec) -> NDArray[Any]:
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


def _array(tensor: InputTensor, spec: ModelSpec) -> NDArray[Any]:
    """The tensor's data as an array of its shape, in the model's input dtype."""
    wanted = spec.input_datatype
    if not _compatible(tensor.datatype, wanted):
        raise bad_request(
            f"input {tensor.name!r} has datatype {tensor.datatype}; the model takes {wanted}"
        )
    data = tensor.data
    array: NDArray[Any]
    parsed = not isinstance(data, np.ndarray)  # JSON, as orjson parsed it
    if not parsed:
        array = data
    else:
        try:
            array = np.asarray(data if isinstance(data, list) else [data])
        except (ValueError, TypeError):
            raise bad_request(
                f"input {tensor.name!r}: 'data' is not a regular (non-ragged) array"
            ) from None
    expected = math.prod(tensor.shape)
    if array.size != expected:
        raise bad_request(
            f"input {tensor.name!r}: 'data' holds {array.size} values, shape "
            f"{list(tensor.shape)} needs {expected}"
        )
    array = _checked_values(array, tensor.datatype, tensor.name, parsed)
    if array.shape != tensor.shape:
        array = array.reshape(tensor.shape)
    if array.dtype == spec.dtype:
        return array
    try:
        return array.astype(spec.dtype)
    except (ValueError, TypeError, OverflowError):
        message = f"input {tensor.name!r}: values cannot be converted to {wanted}"
        raise bad_request(message) from None


def _compatible(given: str, wanted: str) -> bool:
    if wanted in FLOAT_TYPES:
        return given in NUMERIC_TYPES
    if wanted in _INT_RANGES:
        return given in _INT_RANGES
    return given == wanted


def _checked_values(
    array: NDArray[Any], datatype: str, name: str, parsed: bool = False
) -> NDArray[Any]:
    """`name`: the input's; `parsed`: the values come from orjson, which never yields NaN or an
    infinity."""
    kind = array.dtype.kind
    if datatype == "FP64" and kind in "iuf":  # the common case, with nothing to check
        if kind == "f" and not parsed and not np.isfinite(array).all():
            raise bad_request(f"input {name!r}: values must be finite numbers")
        return array
    where = f"input {name!r}"
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
        if array.dtype == _DTYPES[datatype]:
            return array  # raw data of exactly this type: in range by construction
        low, high = _INT_RANGES[datatype]
        if kind == "f" or (array.size and (array.min() < low or array.max() > high)):
            raise bad_request(f"{where}: {datatype} data must be integers in [{low}, {high}]")
        return array
    if kind == "f" and not parsed and not np.isfinite(array).all():
        raise bad_request(f"{where}: values must be finite numbers")
    if kind == "f" and datatype != "FP64":
        with np.errstate(over="ignore"):
            narrowed = array.astype(_DTYPES[datatype])
        if not np.isfinite(narrowed).all():
            raise bad_request(f"{where}: values out of the range of {datatype}")
    return array


def _requested_outputs(requested: Any) -> list[tuple[str, dict[str, Any]]] | None:
    if requested is None:
        return None
    if not isinstance(requested, list) or not requested:
        raise bad_request("'outputs' must be a non-empty list of {\"name\": ...} objects")
    names = []
    for index, item in enumerate(requested):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise bad_request(f"outputs[{index}] must be an object with a 'name'")
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise bad_request(f"outputs[{index}]: 'parameters' must be an object")
        names.append((name, parameters))
    return names


def _outputs(
    requested: list[tuple[str, dict[str, Any]]] | None, spec: ModelSpec, binary_default: Any
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The outputs to answer, in order, and those of them to answer in the raw layout."""
    if not isinstance(binary_default, bool):
        raise bad_request(f"parameter {BINARY_DATA_OUTPUT!r} must be true or false")
    if requested is None:
        return tuple(spec.outputs), frozenset(spec.outputs) if binary_default else frozenset()
    names: list[str] = []
    binary = set()
    for name, parameters in requested:
        if name not in spec.outputs:
            raise bad_request(
                f"unknown output {name!r}: this model has {', '.join(map(repr, spec.outputs))}"
            )
        if "classification" in parameters:
            raise bad_request(
                f"output {name!r}: the classification extension is not supported; ask for "
                f"{PREDICT_PROBA!r} and the classes in the model metadata's parameters"
            )
        wanted = parameters.get(BINARY_DATA, binary_default)
        if not isinstance(wanted, bool):
            raise bad_request(f"output {name!r}: parameter {BINARY_DATA!r} must be true or false")
        if name not in names:
            names.append(name)
        if wanted:
            binary.add(name)
    return tuple(names), frozenset(binary)


def encode_v2(
    spec: ModelSpec,
    decoded: Decoded,
    results: dict[str, NDArray[Any]],
    answer_id: str | None = None,
) -> tuple[dict[str, Any], list[bytes]]:
    """The response's JSON and, for outputs asked for in the binary tensor extension, their
    raw data in the order of the outputs (each announced by its binary_data_size). Its id:
    `answer_id`, else the request's."""
    outputs = []
    blobs = []
    for name in decoded.outputs:
        value = results[name]
        datatype = spec.outputs[name]["datatype"]
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(value.shape)}
        if name in decoded.binary_outputs:
            blob = to_raw(value, datatype)
            output["parameters"] = {BINARY_DATA_SIZE: len(blob)}
            blobs.append(blob)
        else:
            output["data"] = _flat(value)
        outputs.append(output)
    response: dict[str, Any] = {"model_name": spec.name, "outputs": outputs}
    if spec.version:
        response["model_version"] = spec.version
    answer_id = decoded.request_id if answer_id is None else answer_id
    if answer_id is not None:
        response["id"] = answer_id
    return response, blobs


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
    tensor = InputTensor(spec.input["name"], datatype, (len(instances), spec.n_features), instances)
    if not all(isinstance(row, list) and len(row) == spec.n_features for row in instances):
        raise bad_request(
            f"each instance must be a list of {spec.n_features} values (or an object keyed by "
            f"the feature names {', '.join(map(repr, spec.columns))})"
        )
    if datatype in NUMERIC_TYPES:
        # V1 has no datatypes: JSON numbers are read as the widest type of the model's kind.
        natural = "FP64" if datatype in FLOAT_TYPES else "INT64"
        tensor = InputTensor(tensor.name, natural, tensor.shape, instances)
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
