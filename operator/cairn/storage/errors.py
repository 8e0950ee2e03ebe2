"""The errors of artifact storage. Each message names the problem and how to fix it."""


class StorageError(Exception):
    """Base of every artifact-storage error."""


class InvalidArtifactURI(StorageError, ValueError):
    """An artifact URI that is malformed."""


class UnsupportedArtifactStore(InvalidArtifactURI):
    """A well-formed URI of a store Cairn does not support (yet)."""


class InvalidDigest(StorageError, ValueError):
    """A digest that is not of the form sha256:<64 lowercase hex digits>."""


class ArtifactError(StorageError):
    """An artifact directory that cannot be read as one: missing, or holding links or devices."""


class DigestMismatch(ArtifactError):
    """An artifact whose files are not the ones that were recorded."""
