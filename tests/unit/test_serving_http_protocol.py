"""The response transport that sends a response's head with its first body: what each request
writes reaches the connection in order, whole, and in one write where uvicorn made two."""

import asyncio
from typing import Any

import pytest

from cairn.serving.http_protocol import CONTINUE, HeadHeldUntilBody

pytestmark = pytest.mark.unit

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Connection(asyncio.Transport):
    """A transport that records what was written to it and when it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


def test_head_and_body_go_out_in_one_write() -> None:
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    response.write(HEAD)
    assert connection.writes == []
    response.write(b"ok")
    assert connection.writes == [HEAD + b"ok"]


def test_later_bodies_are_written_as_they_come() -> None:
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    for part in (HEAD, b"1\r\na\r\n", b"1\r\nb\r\n", b"0\r\n\r\n"):
        response.write(part)
    assert connection.writes == [HEAD + b"1\r\na\r\n", b"1\r\nb\r\n", b"0\r\n\r\n"]


def test_an_empty_body_still_sends_the_head() -> None:
    # A HEAD request or a 204: the body message carries no bytes.
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    response.write(HEAD)
    response.write(b"")
    assert connection.writes == [HEAD]


def test_the_interim_100_continue_is_not_held() -> None:
    # The client sends its body only after it, so holding it would hang the request.
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    response.write(CONTINUE)
    assert connection.writes == [CONTINUE]
    response.write(HEAD)
    response.write(b"ok")
    assert connection.writes == [CONTINUE, HEAD + b"ok"]


def test_a_close_after_the_head_sends_it_first() -> None:
    # An app that fails after starting its answer: uvicorn closes the connection.
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    response.write(HEAD)
    response.close()
    assert connection.writes == [HEAD]
    assert connection.closed and response.is_closing()


def test_a_close_with_nothing_held_writes_nothing() -> None:
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    response.close()
    assert connection.writes == []
    assert connection.closed


def test_buffers_of_any_kind_are_joined() -> None:
    connection = Connection()
    response = HeadHeldUntilBody(connection)
    response.write(bytearray(HEAD))
    response.write(memoryview(b"ok"))
    assert connection.writes == [HEAD + b"ok"]
    assert response.get_extra_info("peername") == ("127.0.0.1", 1234)
