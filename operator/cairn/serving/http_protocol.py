"""uvicorn's httptools protocol, sending each response's head and first body in one write.

uvicorn writes a response's status line and headers as soon as the app starts the response, and
its body when the app sends it: two writes, so two send calls and two packets for every answer,
about a third of the event loop's time per request under load. The head is held instead until the
first body (or the close) that follows it, which for the whole answers this server sends is the
same moment: nothing a client could use is delayed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests write their response through a HeadHeldUntilBody."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade request returns early and keeps the previous cycle, already wrapped. The
        # answer to a HEAD request is a head alone: uvicorn writes no body after it.
        if (
            cycle is not None
            and cycle.scope["method"] != "HEAD"
            and not isinstance(cycle.transport, HeadHeldUntilBody)
        ):
            cycle.transport = HeadHeldUntilBody(cycle.transport)


class HeadHeldUntilBody(asyncio.Transport):
    """The connection's transport as one request's response sees it: its first write (the head;
    never the interim "100 Continue", which the client waits for before sending the body) is held
    and sent with the next write, or before the connection closes."""

    __slots__ = ("_head", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        # BaseTransport's own state (its extra-info dict) is not used: every call is passed on.
        self._transport = transport
        self._head = b""
        self._held = False  # the head was written, and is held or has gone out

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if not self._held and data != CONTINUE:
            self._held = True
            self._head = bytes(data)
            return
        if self._head:
            data, self._head = self._head + data, b""
        self._transport.write(data)

    def close(self) -> None:
        if self._head:
            self._transport.write(self._head)
            self._head = b""
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)
