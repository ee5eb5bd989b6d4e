"""A data source for the most common home-made dataset: one folder per species.

    root/                       layout="species"
      bobcat/IMG_0001.JPG
      empty/IMG_0002.JPG
    root/                       layout="location/species"
      site_A/bobcat/IMG_0001.JPG

``fetch`` copies the images under ``out_dir/<name>/images`` (an image already copied is
skipped, so an interrupted fetch resumes) and writes a COCO Camera Traps file beside
them with one image-level annotation per image. A folder called ``empty`` or ``blank``
becomes category 0, the conventional "empty".
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ct_io.cct import from_records, write_cct
from ct_io.errors import CamtrapError
from ct_io.paths import safe_join
from ct_io.sources import FetchedDataset

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
EMPTY_NAMES = frozenset({"empty", "blank"})


@attrs.frozen
class SpeciesFoldersOptions:
    """Options of the ``species-folders`` data source (``-o root=...`` on the command line)."""

    root: Path
    layout: Literal["species", "location/species"] = "species"
    name: str = "species-folders"


class SpeciesFolders:
    """Turns a folder-per-species tree into images + a CCT file."""

    def __init__(self, options: SpeciesFoldersOptions) -> None:
        self.options = options

    def fetch(self, out_dir: Path, progress: Progress | None = None) -> FetchedDataset:
        """Copy the images and write ``<name>_cct.json``; say where they are."""
        root = self.options.root
        if not root.is_dir():
            raise CamtrapError(f"species-folders: {root} is not a folder — set -o root=FOLDER")
        files = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise CamtrapError(f"species-folders: no .jpg/.jpeg/.png images under {root}")
        dataset_dir = out_dir / self.options.name
        images_dir = dataset_dir / "images"
        task = progress.add_task("copying images", total=len(files)) if progress else None
        records: list[dict[str, Any]] = []
        for path in files:
            record = self._record(path.relative_to(root).as_posix())
            if record is not None:
                _copy_once(path, safe_join(images_dir, record["file_name"]))
                records.append(record)
            if progress is not None and task is not None:
                progress.advance(task)
        cct_path = dataset_dir / f"{self.options.name}_cct.json"
        write_cct(_to_cct(records), cct_path)
        log.info(
            "species-folders: %d images in %d categories",
            len(records),
            len({r["species"] for r in records}),
        )
        return FetchedDataset(self.options.name, cct_path, images_dir)

    def _record(self, rel: str) -> dict[str, Any] | None:
        parts = rel.split("/")
        depth = 2 if self.options.layout == "species" else 3
        if len(parts) < depth:
            log.warning(
                "species-folders: skipping %s (expected layout %s/...)", rel, self.options.layout
            )
            return None
        location = parts[0] if self.options.layout == "location/species" else None
        species = parts[depth - 2]
        return {"file_name": rel, "location": location, "species": species.lower()}


def _copy_once(src: Path, dst: Path) -> None:
    """Copy unless an identical-size copy is already there (resume after interruption)."""
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)  # atomic: a half-copied image never has the final name


def _to_cct(records: list[dict[str, Any]]) -> Any:
    names = sorted({r["species"] for r in records} - EMPTY_NAMES)
    ids = {name: i for i, name in enumerate(names, start=1)}
    ids.update({name: 0 for name in EMPTY_NAMES})
    used = {r["species"] for r in records}
    categories = [{"id": 0, "name": "empty"}] if used & EMPTY_NAMES else []
    categories += [{"id": ids[n], "name": n} for n in names]
    images, annotations = [], []
    for i, r in enumerate(records):
        image = {"id": r["file_name"], "file_name": r["file_name"]}
        if r["location"] is not None:
            image["location"] = r["location"]
        images.append(image)
        annotations.append(
            {"id": f"ann{i:06d}", "image_id": r["file_name"], "category_id": ids[r["species"]]}
        )
    return from_records(images, annotations, categories, info={"description": "species-folders"})
