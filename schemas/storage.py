"""Where the data home lives: a local folder or an object store (`s3://`, `gs://`, anything fsspec reaches).

Local homes are `pathlib.Path`s, with the atomic renames a POSIX file system gives. Object-store homes are
`UPath`s (universal-pathlib, over fsspec), which have no rename: there a run or a version becomes visible when
its manifest is written, last, and a version number is claimed with a conditional write that fails when the
object exists (`create_exclusive`). Endpoints and keys of the store come from the environment
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ... as the store's fsspec driver reads them), never from the path.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

LOCAL_PROTOCOLS = ("", "file", "local")

AnyPath = Any  # pathlib.Path or upath.UPath: the same methods (/, exists, iterdir, glob, open, read_text, ...)


def protocol_of(location: str | os.PathLike[str]) -> str:
    text = os.fspath(location)
    return text.split("://", 1)[0] if "://" in text else ""


def is_remote(location: Any) -> bool:
    """True for an object-store location (an `s3://`, `gs://`, ... URL or a UPath on one)."""
    if isinstance(location, Path):
        return False
    proto = getattr(location, "protocol", None)
    if proto is not None:
        return proto not in LOCAL_PROTOCOLS
    return protocol_of(str(location)) not in LOCAL_PROTOCOLS


def as_path(location: Any) -> AnyPath:
    """A `Path` for a local location, a `UPath` for an object-store one (unchanged if already one)."""
    if isinstance(location, Path) or (not isinstance(location, str) and hasattr(location, "fs")):
        return location
    text = os.fspath(location)
    if not is_remote(text):
        return Path(text.removeprefix("file://")).expanduser()
    from upath import UPath

    # other processes (workers, publishers) change the store: never answer a listing from a stale cache
    return UPath(text, use_listings_cache=False)


def url_of(path: AnyPath) -> str:
    """A string that Beam workers and fsspec open: a local path, or the object's URL."""
    return str(path)


def filesystem(path: AnyPath) -> Any:
    """The fsspec filesystem of a location (the local one for a `Path`)."""
    if isinstance(path, Path):
        import fsspec

        return fsspec.filesystem("file")
    return path.fs


def fs_path(path: AnyPath) -> str:
    """The path as the filesystem's own methods take it (no protocol for an object store)."""
    return str(path) if isinstance(path, Path) else path.path


def write_bytes(path: AnyPath, data: bytes) -> None:
    """Write a whole file: aside and renamed on a local disk; one PUT (atomic by itself) on an object store."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    else:
        path.fs.pipe_file(path.path, data)


def create_exclusive(path: AnyPath, data: bytes = b"") -> bool:
    """Create the file only if it does not exist yet; False if it does. The one atomic claim an object store
    offers (S3's `If-None-Match: *`, GCS's generation 0): two writers never both succeed."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "xb") as fh:
                fh.write(data)
        except FileExistsError:
            return False
        return True
    try:
        path.fs.pipe_file(path.path, data, mode="create")
    except FileExistsError:
        return False
    except Exception as err:  # drivers word "exists" differently (S3: 412 PreconditionFailed)
        text = f"{type(err).__name__} {err}"
        if "PreconditionFailed" in text or "412" in text or "exist" in text.lower():
            return False
        raise
    return True


def remove_tree(path: AnyPath) -> None:
    """Remove a folder and everything in it (nothing to do if it is not there)."""
    if isinstance(path, Path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        path.fs.rm(path.path, recursive=True)


def list_files(path: AnyPath, pattern: str = "*.parquet") -> list[AnyPath]:
    """Files matching `pattern` directly in a folder, sorted by name (none if the folder is not there)."""
    if isinstance(path, Path):
        return sorted(p for p in path.glob(pattern) if p.is_file()) if path.is_dir() else []
    fs = path.fs
    try:
        found = fs.glob(f"{path.path.rstrip('/')}/{pattern}")
    except FileNotFoundError:
        return []
    return [path / name.rsplit("/", 1)[-1] for name in sorted(found)]
