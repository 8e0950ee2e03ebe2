"""Serving observability.metrics over HTTP with prometheus-client's own server, in a thread."""

import dataclasses
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from cairn.observability.metrics import REGISTRY

DEFAULT_ADDRESS = "0.0.0.0:8081"
ENV = "CAIRN_METRICS_ADDR"
PATH = "/metrics"


def parse_address(value: str) -> tuple[str, int] | None:
    """HOST:PORT (IPv6 as [::]:8081) → (host, port); "" or "0" → None: metrics are off."""
    value = value.strip()
    if value in ("", "0"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (or 0 to serve no metrics)")
    return host.removeprefix("[").removesuffix("]"), int(port)


@dataclasses.dataclass(frozen=True)
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        shown = str(host)
        return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}{PATH}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def start(address: str) -> MetricsServer | None:
    """Serve the metrics at http://ADDRESS/metrics (any path answers); None when turned off.
    Raises OSError when the address cannot be bound."""
    parsed = parse_address(address)
    if parsed is None:
        return None
    host, port = parsed
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    return MetricsServer(server, thread)
