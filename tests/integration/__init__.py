"""Tests against a real Kubernetes cluster, reached only through the `cluster` fixture."""
