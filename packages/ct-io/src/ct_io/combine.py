"""Merge and clean CCT datasets (``ct-io combine``): Animl + LILA + folders → one file.

Per input dataset ``NAME``: image, annotation and sequence ids become ``NAME/<id>``,
``file_name`` becomes ``NAME/<file_name>`` (so the combined file's images live under one
root holding a folder per dataset), locations become ``NAME/<location>`` and a ``dataset``
column records the origin. Category names are harmonised (trimmed, lower case, then a
mapping file or LILA's taxonomy mapping; mapping a label to nothing drops it). Images
marked corrupt, missing on disk, with unsafe paths or duplicating an earlier image (same
file, or same content with ``dedupe="hash"``) are dropped and listed with the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from attrs import define, field, frozen

from ct_io.cct import CocoCameraTraps, read_cct
from ct_io.errors import CamtrapError, EmptyResultError
from ct_io.hookspecs import IMAGES_DIR_KEY
from ct_io.jsonio import read_json
from ct_io.paths import unsafe_reason
from ct_io.sources.common import check_dataset_name, dataset_name_from_file, read_text_csv

if TYPE_CHECKING:
    from rich.table import Table

Dedupe = Literal["none", "path", "hash"]
#: (dataset or None for every dataset, lower-case label) → new label ("" drops it).
LabelMapping = Mapping[tuple[str | None, str], str]


@frozen
class CombineInput:
    """One dataset to merge: its CCT, its name in the result, and where its images are."""

    path: Path
    name: str
    #: None: found where the project's sources put images (:func:`find_images_dir`).
    images_dir: Path | None = None


#: Where the other sources put images, relative to the CCT file's folder: beside it
#: (``lila``, ``animl``) or in ``images/`` (``demo``).
IMAGE_FOLDERS = (".", "images")
_PROBE = 20


def parse_input(spec: str, images_dirs: Mapping[str, Path] | None = None) -> CombineInput:
    """``NAME=path/to/x_cct.json`` or ``path/to/x_cct.json`` (name ``x``); images found where
    the sources put them unless ``images_dirs`` names a folder."""
    name, sep, path = spec.partition("=")
    if not sep or os.sep in name or "/" in name:
        name, path = "", spec
    p = Path(path)
    name = check_dataset_name(name or dataset_name_from_file(p))
    images = (images_dirs or {}).get(name)
    return CombineInput(p, name, Path(images) if images is not None else None)


def find_images_dir(cct_path: Path, ds: CocoCameraTraps) -> Path:
    """The folder holding ``ds``'s images: the one its ``info`` records, else beside the CCT
    file or its ``images/`` folder, whichever holds the most of the first images (beside
    the file when none does)."""
    base = cct_path.parent
    recorded = ds.info.get(IMAGES_DIR_KEY) if isinstance(ds.info, dict) else None
    candidates = [base / str(recorded)] if recorded else []
    candidates += [base / sub if sub != "." else base for sub in IMAGE_FOLDERS]
    files = ds.images["file_name"].astype(str).head(_PROBE).tolist()

    def found(folder: Path) -> int:
        return sum(1 for f in files if unsafe_reason(f) is None and (folder / f).is_file())

    scores = [found(c) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return candidates[best] if scores[best] else base


def parse_inputs(specs: Sequence[str], images_dirs: Sequence[str] = ()) -> list[CombineInput]:
    """Inputs from ``PATH`` / ``NAME=PATH`` specs, with ``NAME=DIR`` images folders."""
    dirs = {}
    for spec in images_dirs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise CamtrapError(f"--images-dir {spec!r} is not NAME=DIR")
        dirs[name] = Path(path)
    parsed = [parse_input(s, dirs) for s in specs]
    unknown = set(dirs) - {p.name for p in parsed}
    if unknown:
        raise CamtrapError(
            f"--images-dir names {', '.join(sorted(unknown))} match no input "
            f"(inputs: {', '.join(p.name for p in parsed)})"
        )
    return parsed


def normalize_label(label: object) -> str:
    """Trimmed, lower case, single spaces: ``" Mule  Deer"`` → ``"mule deer"``."""
    return re.sub(r"\s+", " ", str(label)).strip().lower()


def read_label_mapping(path: str | os.PathLike[str]) -> dict[tuple[str | None, str], str]:
    """A label mapping from CSV (``[dataset,]original_label,label``) or JSON
    (``{"old": "new"}`` or ``{"<dataset>": {"old": "new"}}``). An empty new label drops the label."""
    p = Path(path)
    out: dict[tuple[str | None, str], str] = {}
    if p.suffix.lower() == ".json":
        data = read_json(p)
        if not isinstance(data, dict):
            raise CamtrapError(f"{p}: expected an object of label → new label")
        for key, value in data.items():
            if isinstance(value, dict):
                for old, new in value.items():
                    out[(str(key), normalize_label(old))] = normalize_label(new or "")
            elif isinstance(value, str) or value is None:
                out[(None, normalize_label(key))] = normalize_label(value or "")
            else:
                raise CamtrapError(f"{p}: $.{key}: expected a label or an object of labels")
        return out
    frame = read_text_csv(p, required=("original_label", "label"))
    datasets = frame["dataset"] if "dataset" in frame.columns else pd.Series([None] * len(frame))
    for ds, old, new in zip(datasets, frame["original_label"], frame["label"], strict=True):
        key_ds = str(ds) if isinstance(ds, str) and ds.strip() else None
        out[(key_ds, normalize_label(old))] = normalize_label(new) if isinstance(new, str) else ""
    return out


def taxonomy_label_mapping(
    path: str | os.PathLike[str], *, field_name: str = "common_name"
) -> dict[tuple[str | None, str], str]:
    """LILA's taxonomy mapping as a label mapping: (dataset_name, query) → ``field_name``."""
    frame = read_text_csv(path, required=("dataset_name", "query", field_name))
    frame = frame[frame[field_name].notna()]
    return {
        (str(d), normalize_label(q)): normalize_label(v)
        for d, q, v in zip(frame["dataset_name"], frame["query"], frame[field_name], strict=True)
    }


@define
class CombineReport:
    """What combining did, per dataset, and every image it dropped (with the reason)."""

    rows: list[dict[str, Any]] = field(factory=list)
    dropped: list[dict[str, Any]] = field(factory=list)
    renamed: dict[str, dict[str, str]] = field(factory=dict)

    def write_dropped(self, path: Path) -> None:
        """The dropped images as JSON lines, one per image with the reason."""
        from ct_io.atomic import atomic_open
        from ct_io.jsonio import encode_json

        with atomic_open(path, "wb") as fh:
            for row in self.dropped:
                fh.write(encode_json(row, indent=None) + b"\n")

    def table(self) -> Table:
        """Per-dataset counts, one column per dataset plus the total."""
        from rich.table import Table

        measures = (
            ("images in", "images_in"),
            ("corrupt", "corrupt"),
            ("missing on disk", "missing"),
            ("unsafe path", "unsafe"),
            ("duplicate", "duplicate"),
            ("all labels dropped", "label_dropped"),
            ("images out", "images_out"),
            ("annotations out", "annotations_out"),
            ("labels renamed", "renamed"),
        )
        table = Table(title="combine")
        table.add_column("")
        for r in self.rows:
            table.add_column(str(r["dataset"]), justify="right")
        table.add_column("total", justify="right", style="bold")
        for title, key in measures:
            values = [int(r[key]) for r in self.rows]
            table.add_row(title, *(f"{v:,}" for v in values), f"{sum(values):,}")
        return table


def combine(
    inputs: Sequence[CombineInput],
    *,
    mapping: LabelMapping | None = None,
    dedupe: Dedupe = "path",
    check_files: bool = True,
    threads: int = 8,
) -> tuple[CocoCameraTraps, CombineReport]:
    """Merge ``inputs`` into one dataset (see the module docstring)."""
    if not inputs:
        raise CamtrapError("nothing to combine: give at least one CCT file")
    names = [i.name for i in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CamtrapError(
            f"dataset name(s) {', '.join(dupes)} given twice — name inputs as NAME=path"
        )
    report = CombineReport()
    seen: dict[str, str] = {}  # path or content key → combined image id
    images, annotations = [], []
    for inp in inputs:
        im, an = _one(
            inp, read_cct(inp.path), mapping or {}, dedupe, check_files, threads, seen, report
        )
        images.append(im)
        annotations.append(an)
    _check_not_emptied(report)
    all_images = pd.concat(images, ignore_index=True) if images else pd.DataFrame()
    all_ann = pd.concat(annotations, ignore_index=True)
    label_names = sorted(set(all_ann["label"]), key=lambda n: (n != "empty", n))
    cat_ids = {
        n: i if label_names and label_names[0] == "empty" else i + 1
        for i, n in enumerate(label_names)
    }
    all_ann["category_id"] = all_ann.pop("label").map(cat_ids).astype("int64")
    categories = pd.DataFrame({"id": list(cat_ids.values()), "name": list(cat_ids.keys())})
    info = {"description": "combined by ct-io combine", "datasets": names, "version": "1.0"}
    return CocoCameraTraps(
        images=all_images, annotations=all_ann, categories=categories, info=info
    ), report


def _check_not_emptied(report: CombineReport) -> None:
    """A dataset none of whose images is on disk, or a result with no image, is an error."""
    for row in report.rows:
        checkable = row["images_in"] - row["corrupt"] - row["unsafe"]
        if checkable and row["missing"] == checkable:
            example = next(d["file_name"] for d in report.dropped if d["dataset"] == row["dataset"])
            raise CamtrapError(
                f"{row['dataset']}: none of its {checkable:,} images is in {row['images_dir']} "
                f"(e.g. {example}) — pass --images-dir {row['dataset']}=DIR naming the folder "
                "that holds them (or --no-check-files to keep them anyway)"
            )
    if report.rows and not sum(row["images_out"] for row in report.rows):
        reasons = Counter(str(d["reason"]).split(" of ")[0] for d in report.dropped)
        why = ", ".join(f"{n:,} {r}" for r, n in reasons.most_common())
        raise EmptyResultError(
            f"combining kept no image ({why}) — check --mapping/--taxonomy (a label mapped "
            "to nothing drops it) and --dedupe"
        )


def _one(
    inp: CombineInput,
    ds: CocoCameraTraps,
    mapping: LabelMapping,
    dedupe: Dedupe,
    check_files: bool,
    threads: int,
    seen: dict[str, str],
    report: CombineReport,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    name = inp.name
    lila_name = str(ds.info.get("lila_dataset", "")) if isinstance(ds.info, dict) else ""
    im = ds.images.copy()
    an = ds.annotations.copy()
    files = im["file_name"].astype(str)
    reason = pd.Series([None] * len(im), dtype=object)

    def drop(mask: Any, why: str) -> int:
        mask = np.asarray(mask, dtype=bool) & reason.isna().to_numpy()
        reason[mask] = why
        return int(mask.sum())

    images_dir = inp.images_dir if inp.images_dir is not None else find_images_dir(inp.path, ds)
    counts: dict[str, Any] = {"dataset": name, "images_in": len(im), "images_dir": images_dir}
    counts["corrupt"] = drop(
        im["corrupt"].fillna(False).astype(bool) if "corrupt" in im.columns else np.zeros(len(im)),
        "corrupt",
    )
    counts["unsafe"] = drop(files.map(lambda f: unsafe_reason(f) is not None), "unsafe path")
    paths = [images_dir / f for f in files]
    if check_files:
        counts["missing"] = drop(
            [r is None and not p.is_file() for r, p in zip(reason, paths, strict=True)],
            "missing on disk",
        )
    else:
        counts["missing"] = 0
    # labels: normalize, then map (dataset-specific first, then global, then LILA's dataset name)
    raw = an["category_id"].map({k: normalize_label(v) for k, v in ds.category_names.items()})
    if raw.isna().any():
        raise CamtrapError(
            f"{inp.path}: {int(raw.isna().sum())} annotations use a category id that is not in categories — run `ct-io validate`"
        )
    renamed: dict[str, str] = {}

    def mapped(label: str) -> str:
        for key in ((name, label), (lila_name, label), (None, label)):
            if key in mapping:
                new = mapping[key]
                if new != label:
                    renamed[label] = new or "(dropped)"
                return new
        return label

    an["label"] = raw.map({lab: mapped(lab) for lab in raw.unique()})
    keep_ann = an["label"] != ""
    had = set(an["image_id"])
    still = set(an.loc[keep_ann, "image_id"])
    counts["label_dropped"] = drop(
        im["id"].map(lambda i: i in had and i not in still), "all labels dropped by the mapping"
    )
    an = an[keep_ann]
    # duplicates against every image kept so far (this dataset's and earlier ones')
    new_ids = name + "/" + im["id"].astype(str)
    if dedupe != "none":
        keys = _dedupe_keys(paths, reason, dedupe, threads)
        dup = np.zeros(len(im), dtype=bool)
        dup_of: list[str | None] = [None] * len(im)
        for i, key in enumerate(keys):
            if key is None:
                continue
            if key in seen:
                dup[i] = True
                dup_of[i] = seen[key]
            else:
                seen[key] = new_ids.iat[i]
        counts["duplicate"] = drop(dup, "duplicate")
        for j in np.flatnonzero(dup).tolist():
            if reason.iat[j] == "duplicate":
                reason.iat[j] = f"duplicate of {dup_of[j]}"
    else:
        counts["duplicate"] = 0
    gone = reason.notna().to_numpy()
    for i in np.flatnonzero(gone).tolist():
        report.dropped.append(
            {
                "dataset": name,
                "image_id": str(im["id"].iat[i]),
                "file_name": files.iat[i],
                "reason": reason.iat[i],
            }
        )
    kept_ids = set(im.loc[~gone, "id"])
    im = im[~gone].copy()
    im["dataset"] = name
    im["id"] = name + "/" + im["id"].astype(str)
    im["file_name"] = name + "/" + im["file_name"].astype(str)
    im["location"] = (name + "/" + im["location"].astype(str)).where(im["location"].notna(), None)
    if "seq_id" in im.columns:
        im["seq_id"] = (name + "/" + im["seq_id"].astype(str)).where(im["seq_id"].notna(), None)
    an = an[an["image_id"].isin(kept_ids)].copy()
    an["image_id"] = name + "/" + an["image_id"].astype(str)
    an["id"] = name + "/" + an["id"].astype(str)
    an = an.drop(columns=["category_id"])
    counts.update(images_out=len(im), annotations_out=len(an), renamed=len(renamed))
    report.rows.append(counts)
    report.renamed[name] = renamed
    return im.reset_index(drop=True), an.reset_index(drop=True)


def _dedupe_keys(
    paths: list[Path], reason: pd.Series, dedupe: Dedupe, threads: int
) -> list[str | None]:
    alive = [p if r is None else None for p, r in zip(paths, reason, strict=True)]
    if dedupe == "path":
        return [("path:" + os.path.realpath(p)) if p is not None else None for p in alive]

    def digest(p: Path | None) -> str | None:
        if p is None:
            return None
        try:
            with p.open("rb") as fh:
                return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            return None  # unreadable here; "missing on disk" already says so when checked

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(digest, alive, chunksize=32))
