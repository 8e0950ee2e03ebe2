"""Pydantic models of every Cairn kind: the single source of truth the CRDs are generated from."""
