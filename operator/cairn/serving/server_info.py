"""What the server says about itself, the same over REST and gRPC."""

from typing import Any

from cairn import __version__

SERVER_NAME = "cairn"
# The protocol's optional extensions this server implements (server metadata `extensions`).
EXTENSIONS = ("binary_tensor_data",)


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}
