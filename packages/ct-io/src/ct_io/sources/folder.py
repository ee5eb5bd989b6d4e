"""The ``folder`` data source: local images, with a CCT file or with label-named sub-folders.

Nothing is copied: the written CCT's ``file_name``s are relative to ``root``, which is
returned as the images folder. Locations come from a path component or a regex.

- With ``cct``: the file is checked against the disk; images missing or unreadable are
  reported and left out (``keep_missing`` keeps them).
- Without: every image under ``root`` is labelled by one of its folders
  (``label_component``, default the parent folder), e.g. ``root/site_a/bobcat/x.jpg``
  with ``location_component=0`` gives label ``bobcat``, location ``site_a``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from ct_io.cct import CocoCameraTraps, from_records, read_cct, write_cct
from ct_io.errors import CamtrapError
from ct_io.hookspecs import IMAGES_DIR_KEY, FetchedDataset
from ct_io.paths import unsafe_reason
from ct_io.source_options import FolderOptions
from ct_io.sources.common import check_dataset_name, keep_images

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

EMPTY_LABELS = ("empty", "blank")


class FolderSource:
    """Builds a CCT for a local folder (see the module docstring)."""

    def __init__(self, options: FolderOptions) -> None:
        self.options = options
        self.dropped: dict[str, int] = {}

    def fetch(self, out_dir: Path, progress: Progress | None = None) -> FetchedDataset:
        opts = self.options
        root = Path(opts.root)
        if not root.is_dir():
            raise CamtrapError(f"{root}: not a folder — root must be the folder holding the images")
        name = check_dataset_name(opts.dataset or _safe_name(root.resolve().name))
        ds = self._from_cct(root) if opts.cct is not None else self._from_folders(root, progress)
        loc = self._locations(ds.images["file_name"].astype(str))
        if loc is not None:
            ds.images["location"] = loc.where(loc.notna(), ds.images["location"])
        ds.info[IMAGES_DIR_KEY] = str(root.resolve())  # where `ct-io combine` finds them
        cct_path = Path(out_dir) / name / f"{name}_cct.json"
        write_cct(ds, cct_path)
        log.info(
            "%s: %d images, %d categories → %s", name, len(ds.images), len(ds.categories), cct_path
        )
        return FetchedDataset(name=name, cct_path=cct_path, images_dir=root)

    # ------------------------------------------------------------------ CCT + images

    def _from_cct(self, root: Path) -> CocoCameraTraps:
        assert self.options.cct is not None
        ds = read_cct(self.options.cct)
        files = ds.images["file_name"].astype(str)
        unsafe = files.map(lambda f: unsafe_reason(f) is not None)
        present = files.map(lambda f: unsafe_reason(f) is None and (root / f).is_file())
        self.dropped = {
            "unsafe path": int(unsafe.sum()),
            "missing on disk": int((~present & ~unsafe).sum()),
        }
        for kind, n in self.dropped.items():
            if n:
                log.warning(
                    "%s: %d images with %s%s",
                    self.options.cct,
                    n,
                    kind,
                    "" if self.options.keep_missing or kind == "unsafe path" else " left out",
                )
        keep = ~unsafe if self.options.keep_missing else present
        return keep_images(ds, keep) if not keep.all() else ds

    # ------------------------------------------------------------------ label folders

    def _from_folders(self, root: Path, progress: Progress | None) -> CocoCameraTraps:
        opts = self.options
        files = sorted(
            _walk(
                root, {e.lower() if e.startswith(".") else "." + e.lower() for e in opts.extensions}
            )
        )
        if not files:
            raise CamtrapError(
                f"{root}: no images found (extensions: {', '.join(opts.extensions)})"
            )
        labels = [self._label(f) for f in files]
        unlabeled = sum(1 for x in labels if x is None)
        if unlabeled:
            log.warning(
                "%d images have no label folder (label_component=%d) and are left out",
                unlabeled,
                opts.label_component,
            )
        pairs = [(f, lab) for f, lab in zip(files, labels, strict=True) if lab is not None]
        if not pairs:
            raise CamtrapError(
                f"{root}: no image has a label folder — put images in sub-folders named by label, or set label_component / label_regex"
            )
        names = sorted(
            {lab for _, lab in pairs}, key=lambda n: (n.lower() not in EMPTY_LABELS, n.lower())
        )
        cat_ids = {n: i if names[0].lower() in EMPTY_LABELS else i + 1 for i, n in enumerate(names)}
        headers = self._headers(root, [f for f, _ in pairs], progress)
        images = [{"id": f, "file_name": f, **h} for (f, _), h in zip(pairs, headers, strict=True)]
        annotations = [
            {"id": f"{f}#0", "image_id": f, "category_id": cat_ids[lab]} for f, lab in pairs
        ]
        categories = [{"id": i, "name": n} for n, i in cat_ids.items()]
        self.dropped = {
            "no label folder": unlabeled,
            "corrupt (kept, flagged)": sum(1 for h in headers if h.get("corrupt")),
        }
        return from_records(
            images,
            annotations,
            categories,
            info={"description": f"images under {root}", "version": "1.0"},
        )

    def _label(self, rel: str) -> str | None:
        opts = self.options
        if opts.label_regex:
            return _group(re.search(opts.label_regex, rel), "label")
        return _component(rel, opts.label_component)

    def _locations(self, files: pd.Series) -> pd.Series | None:
        opts = self.options
        if opts.location_regex:
            pattern = re.compile(opts.location_regex)
            return files.map(lambda f: _group(pattern.search(f), "location")).astype(object)
        if opts.location_component is not None:
            return files.map(lambda f: _component(f, opts.location_component)).astype(object)
        return None

    def _headers(
        self, root: Path, files: list[str], progress: Progress | None
    ) -> list[dict[str, Any]]:
        if not self.options.read_headers:
            return [{} for _ in files]
        task = (
            progress.add_task("reading image headers", total=len(files))
            if progress is not None
            else None
        )
        out: list[dict[str, Any]] = []
        with ThreadPoolExecutor(max(1, self.options.threads)) as pool:
            for h in pool.map(lambda f: image_header(root / f), files, chunksize=64):
                out.append(h)
                if progress is not None and task is not None:
                    progress.advance(task)
        return out


def image_header(path: Path) -> dict[str, Any]:
    """``width``, ``height`` and ``datetime`` (EXIF) of an image, or ``corrupt: True``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
            out: dict[str, Any] = {"width": width, "height": height}
            stamp = im.getexif().get(0x0132)  # DateTime
            exif_ifd = im.getexif().get_ifd(0x8769)
            stamp = exif_ifd.get(0x9003, stamp)  # DateTimeOriginal
            if isinstance(stamp, str) and stamp.strip():
                out["datetime"] = stamp.strip()
            return out
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return {"corrupt": True}


def _walk(root: Path, extensions: set[str]) -> Iterator[str]:
    """Relative POSIX paths of image files under ``root`` (hidden files and folders skipped;
    symlinked folders are not followed)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        for fn in filenames:
            if fn.startswith(".") or PurePosixPath(fn).suffix.lower() not in extensions:
                continue
            yield (rel_dir / fn).as_posix()


def _component(rel: str, index: int) -> str | None:
    folders = PurePosixPath(rel).parts[:-1]
    try:
        return folders[index]
    except IndexError:
        return None


def _group(match: re.Match[str] | None, name: str) -> str | None:
    if match is None:
        return None
    if name in match.groupdict():
        return match.group(name)
    return match.group(1) if match.re.groups else match.group(0)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "dataset"
