"""Regenerate the protobuf modules of grpc_predict_v2.proto (python -m cairn.serving.grpc.generate).

Needs grpcio-tools (the `test` extra). The generated modules are committed, so that installing
the package (and the server image) needs no code generator.

One change is made to protoc's output: the messages are registered in a descriptor pool of their
own instead of protobuf's default pool. Every implementation of the protocol defines the same
`inference.*` messages, and the default pool refuses a second definition of a name: with it, a
process could not import cairn.serving together with a client library of the protocol
(tritonclient.grpc, for one).
"""

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the folder that holds the `cairn` package
PROTO = HERE / "grpc_predict_v2.proto"
MODULE = "grpc_predict_v2_pb2"
_DEFAULT_POOL = "_descriptor_pool.Default()"
_OWN_POOL = "_descriptor_pool.DescriptorPool()"


def _protoc(*args: str) -> None:
    from grpc_tools import protoc  # type: ignore[import-untyped]

    include = str(Path(protoc.__file__).parent / "_proto")
    command = ["grpc_tools.protoc", f"-I{ROOT}", f"-I{include}", *args, str(PROTO)]
    if protoc.main(command) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(command)}")


def compiled_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The .proto as protoc compiles it now, as the generated module embeds it."""
    with tempfile.TemporaryDirectory() as out:
        descriptor_set = Path(out) / "set.pb"
        _protoc(f"--descriptor_set_out={descriptor_set}")
        compiled = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file[0]
    # protoc writes each field's JSON name into descriptor sets, not into generated modules.
    messages = list(compiled.message_type)
    while messages:
        message = messages.pop()
        for field in message.field:
            field.ClearField("json_name")
        messages.extend(message.nested_type)
    return compiled


def generate() -> list[Path]:
    with tempfile.TemporaryDirectory() as out:
        _protoc(f"--python_out={out}", f"--pyi_out={out}")
        generated = Path(out) / PROTO.relative_to(ROOT).parent
        written = []
        for suffix in (".py", ".pyi"):
            text = (generated / f"{MODULE}{suffix}").read_text()
            if suffix == ".py":
                if text.count(_DEFAULT_POOL) != 1:
                    raise RuntimeError(f"protoc's output has changed: no single {_DEFAULT_POOL}")
                text = text.replace(_DEFAULT_POOL, _OWN_POOL)
            target = HERE / f"{MODULE}{suffix}"
            target.write_text(text)
            written.append(target)
    return written


if __name__ == "__main__":
    for path in generate():
        print(f"wrote {path}", file=sys.stderr)
