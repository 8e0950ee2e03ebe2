"""ModelInferRequest in, ModelInferResponse out: the gRPC messages to and from the values that
cairn.serving.protocol checks, so that gRPC requests follow exactly the rules of REST ones."""

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cairn.serving.grpc import grpc_predict_v2_pb2 as pb
from cairn.serving.protocol import (
    DATATYPES,
    Decoded,
    InputTensor,
    ModelSpec,
    bad_request,
    decode_tensors,
    raw_tensor,
)
from cairn.serving.tensors import to_raw

# The InferTensorContents field that holds each datatype (FP16 has none: raw contents only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_CONTENTS_DTYPE = {
    "bool_contents": np.bool_,
    "int_contents": np.int64,
    "int64_contents": np.int64,
    "uint_contents": np.uint64,
    "uint64_contents": np.uint64,
    "fp32_contents": np.float32,
    "fp64_contents": np.float64,
}


def parameters_of(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """A parameters map as the plain values the JSON form of the protocol has."""
    values = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = getattr(parameter, choice) if choice else None
    return values


def decode_request(request: pb.ModelInferRequest, spec: ModelSpec) -> Decoded:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise bad_request(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: "
            "give one per input, in order"
        )
    if not request.inputs:
        raise bad_request("the request has no inputs")
    tensors = [
        _input(tensor, raw[index] if raw else None) for index, tensor in enumerate(request.inputs)
    ]
    requested = [
        (output.name, parameters_of(output.parameters)) for output in request.outputs
    ] or None
    return decode_tensors(
        tensors, requested, spec, request.id or None, parameters_of(request.parameters)
    )


def _input(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> InputTensor:
    name, datatype = tensor.name, tensor.datatype
    if not name:
        raise bad_request("an input has no name")
    where = f"input {name!r}"
    if datatype not in DATATYPES:
        raise bad_request(
            f"{where}: datatype {datatype!r} is not one of {', '.join(sorted(DATATYPES))}"
        )
    shape = tuple(tensor.shape)
    if any(size < 0 for size in shape):
        raise bad_request(f"{where}: shape {list(shape)} has a negative size")
    if raw is not None:
        if tensor.HasField("contents"):
            raise bad_request(f"{where} has contents and raw_input_contents: send one")
        return InputTensor(name, datatype, shape, raw_tensor(raw, datatype, shape, where))
    return InputTensor(name, datatype, shape, _typed_contents(tensor.contents, datatype, where))


def _typed_contents(contents: pb.InferTensorContents, datatype: str, where: str) -> NDArray[Any]:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise bad_request(f"{where}: {datatype} has no typed contents: send raw_input_contents")
    for other in set(CONTENTS_FIELD.values()) - {field}:
        if len(getattr(contents, other)):
            raise bad_request(f"{where}: a {datatype} tensor's data goes in contents.{field}")
    values = getattr(contents, field)
    if field == "bytes_contents":
        try:
            return np.array([value.decode() for value in values], dtype=str)
        except UnicodeDecodeError:
            raise bad_request(f"{where}: BYTES elements must be UTF-8 text") from None
    return np.array(values, dtype=_CONTENTS_DTYPE[field])


def encode_response(
    spec: ModelSpec, decoded: Decoded, results: dict[str, NDArray[Any]], raw: bool
) -> pb.ModelInferResponse:
    """`raw`: outputs in raw_output_contents (as the request's inputs were), else typed."""
    response = pb.ModelInferResponse(
        model_name=spec.name, model_version=spec.version or "", id=decoded.request_id or ""
    )
    datatypes = [spec.outputs[name]["datatype"] for name in decoded.outputs]
    # One form for the whole response: the protocol forbids mixing them.
    raw = raw or any(datatype not in CONTENTS_FIELD for datatype in datatypes)
    for name, datatype in zip(decoded.outputs, datatypes, strict=True):
        value = results[name]
        output = response.outputs.add(name=name, datatype=datatype, shape=value.shape)
        if raw:
            response.raw_output_contents.append(to_raw(value, datatype))
            continue
        field = getattr(output.contents, CONTENTS_FIELD[datatype])
        flat = value.reshape(-1)
        if datatype == "BYTES":
            field.extend(
                item if isinstance(item, bytes) else str(item).encode() for item in flat.tolist()
            )
        elif datatype == "BOOL":
            field.extend(flat.astype(bool).tolist())
        else:
            field.extend(flat.astype(_CONTENTS_DTYPE[CONTENTS_FIELD[datatype]]).tolist())
    return response
