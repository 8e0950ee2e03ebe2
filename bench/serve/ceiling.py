"""The ceiling of the REST table: a raw ASGI app that reads the request body and answers a fixed
JSON body, on the stack cairn-serve runs on (uvicorn, httptools, uvloop, one worker).

No Python server on this stack can answer faster: cairn/ceiling is the share of that limit that
cairn-serve reaches while actually decoding, batching, predicting and encoding.
    uvicorn bench.serve.ceiling:app --loop uvloop --http httptools
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

# What cairn answers for one iris row asking for `predict`, byte for byte the same size.
ANSWER = (
    b'{"model_name":"iris","outputs":[{"name":"predict","datatype":"INT64","shape":[1],'
    b'"data":[0]}]}'
)
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", b"%d" % len(ANSWER)),
]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to start
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
