"""Helpers the tests share: finding the cluster, waiting, building workloads."""
