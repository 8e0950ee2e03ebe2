"""Tensors as raw bytes, the layout shared by the binary tensor extension (REST) and gRPC's
raw_input_contents / raw_output_contents: elements row-major, little-endian, without padding;
BOOL one byte each; BYTES each element a 4-byte little-endian length, then its bytes.
"""

import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The little-endian numpy dtype of each fixed-size datatype. BOOL is read as bytes, so that
# values other than 0 and 1 can be refused.
_TYPECODES = {"BOOL": "u1", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"} | {
    f"{sign}INT{bits}": f"<{'u' if sign else 'i'}{bits // 8}"
    for sign in ("", "U")
    for bits in (8, 16, 32, 64)
}
RAW_DTYPES: dict[str, np.dtype[Any]] = {name: np.dtype(code) for name, code in _TYPECODES.items()}
_LENGTH = struct.Struct("<I")


class RawTensorError(ValueError):
    """Raw contents that do not hold the tensor their metadata describes."""


def element_count(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def from_raw(raw: bytes, datatype: str, shape: tuple[int, ...]) -> NDArray[Any]:
    """The tensor's elements, in `shape`. BYTES elements come back as bytes objects."""
    count = element_count(shape)
    if datatype == "BYTES":
        return np.array(_split_bytes(raw, count), dtype=object).reshape(shape)
    dtype = RAW_DTYPES.get(datatype)
    if dtype is None:
        raise RawTensorError(f"datatype {datatype!r} has no raw layout")
    if len(raw) != count * dtype.itemsize:
        raise RawTensorError(
            f"{len(raw)} bytes of {datatype} data; shape {list(shape)} needs "
            f"{count * dtype.itemsize}"
        )
    array = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL":
        if array.size and array.max() > 1:
            raise RawTensorError("BOOL elements must be bytes 0 or 1")
        array = array.view(np.bool_)
    return array.reshape(shape)


def _split_bytes(raw: bytes, count: int) -> list[bytes]:
    elements = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise RawTensorError("BYTES data ends inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise RawTensorError(f"a BYTES element of {length} bytes runs past the data's end")
        elements.append(raw[offset : offset + length])
        offset += length
    if len(elements) != count:
        raise RawTensorError(f"{len(elements)} BYTES elements; the shape needs {count}")
    return elements


def to_raw(array: NDArray[Any], datatype: str) -> bytes:
    """`array` in the raw layout of `datatype` (converted to it where its dtype differs)."""
    if datatype == "BYTES":
        parts = []
        for item in array.reshape(-1).tolist():
            encoded = item if isinstance(item, bytes) else str(item).encode()
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    dtype = RAW_DTYPES[datatype]
    return np.ascontiguousarray(array, dtype=dtype).tobytes()
