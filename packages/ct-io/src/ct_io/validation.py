"""Validate or load a file whose kind (CCT or MD JSON) is detected from its content."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ct_io.detect_format import FileKind, sniff_kind
from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import read_json
from ct_io.md import MDResults, parse_md, validate_md_dict
from ct_io.problems import Problem

if TYPE_CHECKING:  # ct_io.cct imports pandas (seconds): only CCT files need it
    from ct_io.cct import CocoCameraTraps


def validate_file(
    path: str | os.PathLike[str], *, images_dir: str | os.PathLike[str] | None = None
) -> tuple[FileKind, list[Problem]]:
    """The file's kind and every problem in it (a file that cannot be parsed is one problem)."""
    p = Path(path)
    try:
        kind = sniff_kind(p)
    except OSError as exc:
        return "unknown", [Problem("$", f"cannot read: {exc.strerror or exc}")]
    try:
        if kind == "md":
            return kind, validate_md_dict(read_json(p))
        if kind == "cct":
            from ct_io.cct import read_cct, validate_cct

            return kind, validate_cct(read_cct(p), images_dir=images_dir)
        read_json(p)  # neither kind: say so, unless the JSON itself is broken (more useful)
    except FormatError as exc:
        return kind, exc.problems
    except CamtrapError as exc:
        return kind, [Problem("$", str(exc).removeprefix(f"{p}: "))]
    return kind, [
        Problem(
            "$",
            "neither COCO Camera Traps nor MegaDetector JSON",
            "CCT has images/annotations/categories; MD JSON has images[].file and detection_categories",
        )
    ]


def load_any(path: str | os.PathLike[str]) -> CocoCameraTraps | MDResults:
    """Load a CCT or MD JSON file, whichever it is."""
    p = Path(path)
    if not p.is_file():
        raise CamtrapError(f"{p}: file not found")
    kind = sniff_kind(p)
    if kind == "md":
        return parse_md(read_json(p), source=str(p))
    if kind == "cct":
        from ct_io.cct import read_cct

        return read_cct(p)
    raise CamtrapError(f"{p}: neither COCO Camera Traps nor MegaDetector JSON")
