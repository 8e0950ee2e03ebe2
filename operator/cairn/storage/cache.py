"""A directory of artifacts keyed by digest: the node-local model cache of the serving pods.

Each entry is `<root>/sha256-<hex>/`, the artifact's files exactly. An entry appears only whole
and verified: a download goes into a staging directory under the root, is checked against its
digest, then renamed into place (atomic on one filesystem), so pods on the same node that fetch
the same version at once never see half an entry; the first rename wins, the others' copies are
dropped. Entries are used read-only and touched on each use; the least recently used are
removed once the cache outgrows its bound, never the one just used.

Whoever reads an entry still verifies its digest before trusting it (the model server does, as
for any directory), so a damaged or planted entry is refused, dropped and fetched again.
"""

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from cairn.storage.digest import check_digest_syntax

STAGING_PREFIX = ".staging-"
# A staging directory older than this was left by a process that died mid-download.
STALE_STAGING_S = 3600


class DigestCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def writable(self) -> bool:
        """Whether this process can add entries (the node directory may belong to root)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)

    def entry(self, digest: str) -> Path:
        return self.root / check_digest_syntax(digest).replace(":", "-")

    def lookup(self, digest: str) -> Path | None:
        """The entry of `digest` when the cache has it, marked as just used."""
        entry = self.entry(digest)
        if not entry.is_dir():
            return None
        # Another user's entry is still usable; only its recency is not recorded.
        with contextlib.suppress(OSError):
            os.utime(entry)
        return entry

    def staging(self) -> Path:
        """A new, empty directory to download into, on the cache's filesystem."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.root))

    def insert(self, staged: Path, digest: str) -> Path:
        """Move a verified staging directory into place as the entry of `digest`."""
        entry = self.entry(digest)
        try:
            staged.rename(entry)
        except OSError:
            if not entry.is_dir():
                raise
            shutil.rmtree(staged, ignore_errors=True)  # another pod put it there first
        return entry

    def evict(self, digest: str) -> None:
        shutil.rmtree(self.entry(digest), ignore_errors=True)

    def prune(self, max_bytes: int, keep: str) -> list[Path]:
        """Remove the least recently used entries beyond `max_bytes` (never `keep`'s) and stale
        staging directories; returns what was removed."""
        removed = []
        now = time.time()
        entries = []
        for path in self.root.iterdir() if self.root.is_dir() else ():
            try:
                used = path.stat().st_mtime
            except OSError:
                continue
            if path.name.startswith(STAGING_PREFIX):
                if now - used > STALE_STAGING_S:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            elif path.is_dir():
                entries.append((used, path))
        kept = self.entry(keep)
        total = sum(_size(path) for _, path in entries)
        for _, path in sorted(entries):
            if total <= max_bytes:
                break
            if path == kept:
                continue
            size = _size(path)
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                total -= size
                removed.append(path)
        return removed


def _size(directory: Path) -> int:
    total = 0
    for base, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                continue
    return total
