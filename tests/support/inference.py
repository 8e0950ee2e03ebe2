"""Open Inference Protocol requests as a client writes them, and the server's errors as a client
reads them: the same for the in-process app and for a server on a socket."""

from typing import Any

import httpx
import numpy as np


def v2(rows: Any, **extra: Any) -> dict[str, Any]:
    """A V2 inference request of one FP64 tensor of rows (row-style input)."""
    rows = np.asarray(rows).tolist()
    tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64"}
    return {"inputs": [tensor | {"data": rows}], **extra}


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    """`status`, with a JSON error whose message has each of `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    for word in words:
        assert word in message, message
