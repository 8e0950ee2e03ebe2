"""The Open Inference Protocol over gRPC: inference.GRPCInferenceService (server.py), its messages
(grpc_predict_v2.proto and the modules generated from it) and their conversion (codec.py)."""
