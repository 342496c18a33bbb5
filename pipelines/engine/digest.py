"""The content digest of a model file, for the cache key: a swapped GGUF behind the same path or name never
answers from the old file's entries. Hashing 100 MB takes a fraction of a second, but once is enough: digests
are remembered by (path, size, mtime) in this process and in a small JSON file beside the user's caches."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

_LOCK = threading.Lock()
_MEMO: dict[tuple[str, int, int], str] = {}


def user_cache_dir() -> Path:
    """valuecorpus's folder among the user's caches (model digests, re-encoded model files)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "valuecorpus"


def _memo_file() -> Path:
    return user_cache_dir() / "model-digests.json"


def file_digest(path: str) -> str:
    """sha256 of the file's content, computed once per (path, size, mtime)."""
    st = os.stat(path)
    ident = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if ident in _MEMO:
            return _MEMO[ident]
        memo_key = f"{ident[0]}|{ident[1]}|{ident[2]}"
        memo_path = _memo_file()
        try:
            stored = json.loads(memo_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        digest = stored.get(memo_key)
        if not isinstance(digest, str):
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            digest = h.hexdigest()
            stored[memo_key] = digest
            try:  # a read-only home only costs the hash again next time
                memo_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = memo_path.with_name(f".{memo_path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(stored, indent=0, sort_keys=True), encoding="utf-8")
                os.replace(tmp, memo_path)
            except OSError:
                pass
        _MEMO[ident] = digest
        return digest
