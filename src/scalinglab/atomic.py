"""Atomic files and directories: write to a temporary sibling, fsync, rename, so readers never see half.

One home for the durability rules every stage follows (the token cache, checkpoints, run
directories, the study store, the CLI's JSON): a file is replaced by ``os.replace`` of a synced
temporary file; a directory is built under a temporary name, given a ``COMPLETE`` marker that
records the size and SHA-256 of each of its files, and renamed into place. A kill at any moment
leaves the old version or the new one, never a mix, and :func:`verify_dir` detects later damage
(a garbled or truncated file) from the marker. JSON has no NaN or infinity: they are written as null.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalinglab.errors import DamagedFile, DiskError

COMPLETE = "COMPLETE"
"""The marker written last into a finished directory: a JSON manifest of its files."""
_CHUNK = 1 << 20


def jsonable(value: Any) -> Any:
    """JSON-safe data: non-finite floats become null, numpy scalars plain numbers, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):  # numpy scalars
        return jsonable(value.item())
    return value


def dumps(data: Any, indent: int | None = None) -> str:
    """``data`` as strict JSON (``allow_nan=False`` after :func:`jsonable`, so no NaN token escapes)."""
    return json.dumps(jsonable(data), indent=indent, allow_nan=False)


def fsync_path(path: str | Path) -> None:
    """Flush a file or a directory entry to disk (a rename is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """The temporary sibling of ``path`` this process writes before renaming (hidden, pid-tagged)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def os_errors(path: str | Path) -> Iterator[None]:
    """Turn an OSError (disk full, permission, read-only file system) into one line naming path and errno."""
    try:
        yield
    except DiskError:
        raise
    except OSError as e:
        raise DiskError.from_os(e, path) from None


def write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``; on any error the temporary file is removed."""
    path = Path(path)
    tmp = temp_name(path)
    with os_errors(path):
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_path(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` atomically with ``text`` (UTF-8)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Replace ``path`` atomically with ``data`` as indented strict JSON."""
    write_text(path, dumps(data, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``, or None when the file does not exist; a damaged file raises :class:`DamagedFile`."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"is not valid JSON ({type(e).__name__} at {getattr(e, 'pos', '?')})") from None


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file directly in ``directory`` (the marker excepted)."""
    return {
        p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != COMPLETE
    }


def is_complete(directory: str | Path) -> bool:
    """Whether ``directory`` carries its COMPLETE marker (it was renamed into place whole)."""
    return (Path(directory) / COMPLETE).is_file()


def verify_dir(directory: str | Path, checksum_below: int | None = None) -> str:
    """'' when ``directory`` matches its manifest, else why not (a missing, resized or changed file).

    Sizes are always checked; checksums for files smaller than ``checksum_below`` bytes (None: all).
    A marker from before manifests existed (not JSON) checks nothing and passes.
    """
    directory = Path(directory)
    try:
        marker = json.loads((directory / COMPLETE).read_bytes())
    except FileNotFoundError:
        return "no COMPLETE marker (it was never finished)"
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""  # an older marker holding a timestamp: nothing recorded to verify against
    files = marker.get("files") if isinstance(marker, dict) else None
    if not isinstance(files, dict):
        return "" if not isinstance(marker, dict) else "its COMPLETE marker lists no files"
    for name, rec in files.items():
        p = directory / name
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        if size != rec.get("bytes"):
            return f"{name} has {size} bytes, {rec.get('bytes')} were written"
        if (checksum_below is None or size < checksum_below) and sha256(p) != rec.get("sha256"):
            return f"{name} does not match its SHA-256 checksum"
    return ""


def remove_leftovers(parent: Path, name: str) -> None:
    """Delete temporary directories of ``name`` left in ``parent`` by a writer that was killed."""
    for stale in parent.glob(f".{name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: str | Path, extra: dict[str, Any] | None = None) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it to ``final`` when the block succeeds.

    Yields the temporary directory to fill. On success every file is synced, the COMPLETE marker
    (the manifest plus ``extra``) is written last, an existing ``final`` is replaced and the parent
    synced; on any error (a kill leaves the temporary name, removed by the next writer) it is deleted.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    with os_errors(final):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            for p in tmp.iterdir():
                fsync_path(p)
            marker = {"files": manifest(tmp), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(extra or {})}
            with open(tmp / COMPLETE, "w") as f:
                f.write(dumps(marker, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
            fsync_path(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_path(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
