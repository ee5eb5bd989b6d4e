"""Safe handling of relative paths that come from input data (``file_name``, ``file``)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ct_io.errors import UnsafePathError

if TYPE_CHECKING:  # pandas takes about a second to import: CLIs that never need it stay fast
    import pandas as pd


def unsafe_reason(relative: str) -> str | None:
    """Why ``relative`` may not be used under an output folder, or None when it is safe."""
    if not relative or not relative.strip():
        return "empty path"
    if "\x00" in relative:
        return "NUL byte in path"
    norm = relative.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "absolute path"
    if ".." in norm and ".." in norm.split("/"):
        return "'..' component"
    return None


def unsafe_mask(paths: pd.Series) -> pd.Series:
    """Vectorized pre-filter: True where a path may be unsafe (confirm with ``unsafe_reason``)."""
    text = paths.astype("str")
    return text.str.contains(_SUSPICIOUS, regex=True, na=True) | (text.str.strip() == "")


_SUSPICIOUS = r"(?:^|[/\\])\.\.(?:$|[/\\])|^[/\\]|^[A-Za-z]:|\x00"


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """Join a data-supplied relative path under ``root``, refusing anything that escapes it.

    Rejects absolute paths, drive letters, ``..`` components and symlinks inside ``root``
    that resolve outside it.
    """
    reason = unsafe_reason(relative)
    if reason:
        raise UnsafePathError(
            f"refusing path {relative!r}: {reason} — paths in data files must be relative and stay inside {os.fspath(root)}"
        )
    base = Path(root).resolve()
    target = base.joinpath(*PurePosixPath(relative.replace("\\", "/")).parts)
    resolved = target.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(
            f"refusing path {relative!r}: it resolves outside {base} (through a symlink?)"
        )
    return target
