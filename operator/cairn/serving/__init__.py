"""The model server that runs inside serving pods (Open Inference Protocol V2, metrics)."""
