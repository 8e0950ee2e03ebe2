"""Cairn test suite: unit (no cluster), integration and e2e (a real cluster)."""
