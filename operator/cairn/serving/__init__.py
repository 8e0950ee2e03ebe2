"""The model server that runs inside serving pods: cairn-serve.

Open Inference Protocol V2 REST and KServe V1 for one model directory written by
`cairn.training.save_model`, verified against its digest before it is ready; adaptive batching
(cairn.serving.batching); ONNX Runtime when the converted model verifies (cairn.serving.runtime);
Prometheus metrics at /metrics (cairn.serving.metrics).
"""

from cairn.serving.app import ServingApp
from cairn.serving.config import ServeConfig, parse_config
from cairn.serving.main import build_app, main

__all__ = ["ServeConfig", "ServingApp", "build_app", "main", "parse_config"]
