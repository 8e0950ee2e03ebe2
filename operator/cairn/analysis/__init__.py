"""Canary analysis: metric providers and the judge that promotes or rolls back."""
