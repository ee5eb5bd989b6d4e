"""Atomic file writing: temp file in the same folder, fsync, rename.

An interrupted run never leaves a half-written output: readers see either the old file
or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: What :func:`atomic_open` names its temp file: ``.<name>.<random>`` + this suffix.
TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing; the file appears under its name only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        if mode == "wb":
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o644)
        tmp.replace(target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete what :func:`atomic_open` leaves in ``folder`` when its process is killed
    mid-write (``.<name>.<random>.tmp``); returns the files removed.

    Call it only when no other process is writing into ``folder`` (e.g. when a run starts).
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    stale = [
        p
        for p in root.iterdir()
        if p.is_file() and p.name.startswith(".") and p.name.endswith(".tmp")
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
