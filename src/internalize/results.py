"""Results are files: every run writes its config, versions, seeds, curves and summary.

Files are written atomically (a temporary file in the same folder, then a rename), so a
crash never leaves a half-written result behind.

What does not live here: which files a run writes and when (:mod:`internalize.experiments.store`,
:mod:`internalize.experiments.runner`).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = 2  # version of the results layout; bumped when files change incompatibly
MANIFEST = "manifest.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write_bytes(path: Path, data: bytes, *more: bytes) -> None:
    """Write ``data`` (then each of ``more``) to a temporary file beside ``path`` and rename it
    into place: readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in (data, *more):
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would have made it (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path: Path, obj: Any) -> None:
    """JSON, with NaN and infinities written as null (JSON has neither)."""
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def versions() -> dict[str, str]:
    """Versions of Python, this package and what it computes with."""
    out = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    for pkg in ("internalize", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _probe_write(folder: Path) -> bool:
    """Whether a file can really be created in ``folder`` (permission bits lie for root)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".internalize-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def check_writable_dir(path: Path) -> None:
    """Raise ValueError (one line) unless ``path`` is, or can be made, a writable folder.

    Leaves nothing behind: it probes ``path`` or its nearest existing ancestor with a
    temporary file that it removes at once.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"output path {str(path)!r} exists and is not a directory")
        if not _probe_write(path):
            raise ValueError(f"output directory {str(path)!r} is not writable")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create output directory {str(path)!r}: {str(parent)!r} is not a directory")
    if not _probe_write(parent):
        raise ValueError(f"cannot create output directory {str(path)!r}: {str(parent)!r} is not writable")


def write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    """A table (equal-length columns) as Parquet, through pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), buf, compression="zstd")
    atomic_write_bytes(path, buf.getvalue())


def read_parquet(path: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def write_msgpack(path: Path, tree: Any) -> None:
    """A pytree of arrays (network parameters) through flax.serialization."""
    from flax import serialization

    atomic_write_bytes(path, serialization.msgpack_serialize(_numpy_tree(tree)))


def read_msgpack(path: Path) -> Any:
    from flax import serialization

    return serialization.msgpack_restore(Path(path).read_bytes())


def _numpy_tree(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {str(k): _numpy_tree(v) for k, v in tree.items()}
    return np.asarray(tree)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, names: list[str]) -> None:
    """Checksums of a run's stored files, written last: a run without a manifest is unfinished."""
    folder = Path(folder)
    write_json(folder / MANIFEST, {"schema": SCHEMA, "sha256": {n: sha256(folder / n) for n in names}})


def verify(folder: Path) -> list[str]:
    """What is wrong with a run folder's stored files (empty: all present and intact)."""
    folder = Path(folder)
    try:
        manifest = read_json(folder / MANIFEST)
        sums = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{MANIFEST} missing or unreadable (the run did not finish)"]
    problems = []
    for name, digest in sums.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing")
        elif sha256(path) != digest:
            problems.append(f"{name} does not match its checksum (truncated or changed)")
    return problems


class CorruptFile(ValueError):
    """A stored file whose checksum does not match: truncated or changed."""


def write_checked(path: Path, data: bytes) -> None:
    """``data`` followed by its SHA-256, written atomically (see :func:`read_checked`)."""
    atomic_write_bytes(path, data, hashlib.sha256(data).digest())  # no joined copy of large data


def read_checked(path: Path) -> memoryview:
    """The bytes :func:`write_checked` wrote; CorruptFile if they do not match their checksum."""
    raw = memoryview(Path(path).read_bytes())  # views, not copies, of what may be large
    data, digest = raw[:-32], raw[-32:]
    if len(raw) < 32 or hashlib.sha256(data).digest() != digest:
        raise CorruptFile(f"{path} does not match its checksum (truncated or changed)")
    return data
