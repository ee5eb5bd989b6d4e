"""Sort failed images into good / nonexistent / non_image / truncated / bad.

The seed's ``analyze_failed_images.py``, for local folders: reads a list of image paths
from a failure log (ours, MegaDetector's, or a plain list) and checks each file again.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from ct_crop.images import check_image
from ct_io.errors import CamtrapError
from ct_io.paths import unsafe_reason

STATUSES = ("good", "nonexistent", "non_image", "truncated", "bad")
_PATH_COLUMNS = ("image", "file", "path", "file_name")


@frozen
class Verdict:
    """One file's status and why."""

    image: str
    status: str
    reason: str


def read_failed_list(path: Path, keys: Sequence[str] = ()) -> list[str]:
    """Image paths listed in a failure log, deduplicated in order.

    Accepts ``crop_failures.csv`` (or any CSV with an ``image``/``file``/``path``
    column), JSON (a list of paths; an object whose list values hold paths — only
    ``keys`` when given, as MegaDetector's crop logs; or MD JSON, whose failed images
    are taken), or a text file with one path per line.
    """
    if not path.is_file():
        raise CamtrapError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _unique(_from_csv(path))
    if suffix == ".json":
        from ct_io.jsonio import read_json

        return _unique(_from_json(read_json(path), keys, path))
    return _unique(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#"))


def _from_csv(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        column = next((c for c in _PATH_COLUMNS if c in (reader.fieldnames or [])), None)
        if column is None:
            raise CamtrapError(f"{path}: no column named {' or '.join(_PATH_COLUMNS)} (found: {', '.join(reader.fieldnames or [])})")
        return [row[column] for row in reader if row[column]]


def _from_json(data: Any, keys: Sequence[str], path: Path) -> list[str]:
    if isinstance(data, list):
        return [str(x) for x in data]
    if not isinstance(data, dict):
        raise CamtrapError(f"{path}: expected a list of paths or an object of lists")
    if isinstance(data.get("images"), list) and "detection_categories" in data:  # MD JSON: its failed images
        return [im["file"] for im in data["images"] if isinstance(im, dict) and im.get("failure")]
    missing = [k for k in keys if k not in data]
    if missing:
        raise CamtrapError(f"{path}: no key {missing[0]!r} (keys: {', '.join(data)})")
    chosen = keys or [k for k, v in data.items() if isinstance(v, list)]
    return [str(x) for k in chosen for x in data[k]]


def _unique(paths: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(paths))


def analyze_failures(images: Sequence[str], images_dir: Path) -> list[Verdict]:
    """Check every image again and classify it (see ``STATUSES``)."""
    verdicts = []
    for rel in images:
        reason = unsafe_reason(rel)
        if reason:
            verdicts.append(Verdict(rel, "bad", f"unsafe path: {reason}"))
            continue
        status, why = check_image(images_dir.joinpath(*rel.replace("\\", "/").split("/")))
        verdicts.append(Verdict(rel, status, why))
    return verdicts


def write_verdicts(verdicts: Iterable[Verdict], path: Path) -> None:
    """Write ``image,status,reason`` rows atomically, sorted by status then image."""
    import io

    from ct_io.atomic import write_text_atomic

    order = {s: i for i, s in enumerate(STATUSES)}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("image", "status", "reason"))
    for v in sorted(verdicts, key=lambda v: (order.get(v.status, 99), v.image)):
        writer.writerow((v.image, v.status, v.reason))
    write_text_atomic(path, buf.getvalue())


def counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """How many images have each status (every status listed, zeros included)."""
    out = dict.fromkeys(STATUSES, 0)
    for v in verdicts:
        out[v.status] = out.get(v.status, 0) + 1
    return out
