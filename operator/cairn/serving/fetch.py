"""Getting the served model's files from an object store, through the node-local cache.

The cache (cairn.storage.DigestCache) is keyed by the version's digest, so a second pod of the
same version on the node, a restarted pod, or a rollback to an earlier version finds the files
there and downloads nothing. A download is hashed as it arrives and enters the cache only once
it matches the digest; nothing is unpickled before that. When the cache directory cannot be
written (the node's directory belongs to another user), the files go to a private directory
instead: served the same, only not shared.
"""

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cairn.storage import DigestCache, DigestMismatch, Manifest
from cairn.training.artifacts import download_model

log = logging.getLogger("cairn.serving")
# The cache's bound, by default: beyond it the least recently used versions are removed.
DEFAULT_CACHE_MAX_BYTES = 20 << 30


@dataclass(frozen=True)
class Fetched:
    """Where the model's files are, and how they got there."""

    directory: Path
    cache_hit: bool
    downloaded_bytes: int
    seconds: float
    # Set when the files were just downloaded and hashed: their digest is already verified.
    manifest: Manifest | None = None


def private_cache() -> DigestCache:
    return DigestCache(Path(tempfile.gettempdir()) / "cairn-models")


def fetch(
    uri: str, digest: str, cache_dir: Path | None, max_bytes: int = DEFAULT_CACHE_MAX_BYTES
) -> Fetched:
    """The model at `uri` with `digest`, from the cache or downloaded into it. Raises
    ObjectStoreError (the store failed) or DigestMismatch (its objects are not the version's)."""
    started = time.perf_counter()
    cache = DigestCache(cache_dir) if cache_dir is not None else private_cache()
    if cache_dir is not None and not cache.writable():
        found = cache.lookup(digest)
        if found is not None:
            return Fetched(found, True, 0, time.perf_counter() - started)
        log.warning(
            "the model cache %s cannot be written by this user: downloading into a private "
            "directory, which other pods cannot reuse (make the node directory writable for "
            "uid 1000, for example mode 1777)",
            cache_dir,
        )
        cache = private_cache()
    found = cache.lookup(digest)
    if found is not None:
        return Fetched(found, True, 0, time.perf_counter() - started)
    staged = cache.staging()
    try:
        manifest = download_model(uri, staged, digest)
        directory = cache.insert(staged, digest)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    for removed in cache.prune(max_bytes, keep=digest):
        log.info("model cache: removed %s (least recently used)", removed.name)
    return Fetched(directory, False, manifest.size, time.perf_counter() - started, manifest)


def refetch_after_mismatch(
    uri: str, digest: str, cache_dir: Path | None, error: DigestMismatch
) -> Fetched:
    """A cached entry that no longer matches its digest is dropped and downloaded again."""
    log.warning(
        "the cached copy of %s does not match its digest (%s): downloading again", uri, error
    )
    cache = DigestCache(cache_dir) if cache_dir is not None else private_cache()
    cache.evict(digest)
    return fetch(uri, digest, cache_dir)
