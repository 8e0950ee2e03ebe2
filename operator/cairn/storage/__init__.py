"""Artifact storage: URIs (pvc://, file://, s3://) and sha256 digests."""
