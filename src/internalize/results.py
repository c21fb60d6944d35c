"""Results are files: every run writes its config, versions, seeds, curves and summary.

Files are written atomically (a temporary file in the same folder, then a rename), so a
crash never leaves a half-written result behind.
"""
from __future__ import annotations

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

SCHEMA = 1  # version of the results layout; bumped when files change incompatibly


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
