"""The classification dataset table: one row per crop with its dataset, location and label.

Crops of video frames (``clip.mp4/frame000120.jpg___crop00_<detector>.jpg``) are ordinary
rows: they take their clip's image record (location, label), and the clip is their
sequence (``seq_id``, unless the clip has one), so a clip's frames share one split.

Inputs are the selected images (``queried_images.json`` or a CCT) and the crops manifest
written by ``ct-crop``. Output columns: ``path, dataset, location, dataset_class,
confidence, label`` (the reference's), then ``image`` (the source image) and ``seq_id``
when the input has sequences — the split step uses it to keep sequences together.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
from attrs import define, field

from ct_io.cct import CocoCameraTraps
from ct_io.errors import CamtrapError
from ct_io.indexes import image_locations
from ct_io.paths import unsafe_mask, unsafe_reason
from ct_io.tables import CLASSIFICATION_DS_COLUMNS, UNKNOWN_LOCATION, QueriedImage
from ct_splits.counts import split_labels

log = logging.getLogger(__name__)

PseudoMode = Literal["sequence", "dataset", "image"]
DETECTOR_CATEGORIES = ("animal",)


@define
class DatasetLog:
    """What was left out of the table and why (each a count), plus unknown locations."""

    skipped: Counter[str] = field(factory=Counter)
    unknown_location_rows: int = 0
    dropped_labels: list[str] = field(factory=list)
    appended_test_rows: int = 0

    def lines(self) -> list[str]:
        out = [f"{n:,} manifest rows skipped: {why}" for why, n in sorted(self.skipped.items())]
        if self.unknown_location_rows:
            out.append(
                f"{self.unknown_location_rows:,} crops have no location (pseudo-locations used)"
            )
        if self.dropped_labels:
            out.append(f"labels dropped by --min-locs: {', '.join(self.dropped_labels)}")
        if self.appended_test_rows:
            out.append(f"{self.appended_test_rows:,} crops appended from the matched test set")
        return out


# ---------------------------------------------------------------- images


def images_from_queried(
    queried: Mapping[str, QueriedImage], *, pseudo: PseudoMode = "dataset"
) -> pd.DataFrame:
    """One row per selected image: ``image`` (the ``<dataset>/<file>`` key), dataset,
    location, dataset_class, label (comma-joined)."""
    frame = pd.DataFrame(
        {
            "image": list(queried),
            "dataset": [q.dataset for q in queried.values()],
            "location": [q.location for q in queried.values()],
            "dataset_class": [q.dataset_class for q in queried.values()],
            "label": [",".join(q.label) for q in queried.values()],
        }
    )
    unknown = frame["location"].isin(["", UNKNOWN_LOCATION, "None", "nan"])
    if unknown.any():
        if pseudo == "sequence":
            log.warning(
                "queried_images.json has no sequence ids: the %d images without a location share one pseudo-location per dataset",
                int(unknown.sum()),
            )
            pseudo = "dataset"
        fill = (
            UNKNOWN_LOCATION if pseudo == "dataset" else UNKNOWN_LOCATION + "/img:" + frame["image"]
        )
        frame["location"] = frame["location"].where(~unknown, fill)
    return frame


def fill_locations_from_sequences(images: pd.DataFrame) -> pd.DataFrame:
    """Frames without a location take their sequence's location when it has exactly one."""
    if "seq_id" not in images.columns:
        return images
    loc = images["location"]
    known = images[loc.notna() & images["seq_id"].notna()]
    per_seq = known.groupby(known["seq_id"].astype(str))["location"].agg(
        lambda s: s.iloc[0] if s.nunique() == 1 else None
    )
    per_seq = per_seq.dropna()
    missing = loc.isna() & images["seq_id"].notna()
    if missing.any() and len(per_seq):
        filled = images.loc[missing, "seq_id"].astype(str).map(per_seq)
        n = int(filled.notna().sum())
        if n:
            log.info("%d images without a location took it from other frames of their sequence", n)
            images = images.copy()
            images.loc[filled.index, "location"] = filled.where(filled.notna(), None)
    return images


def cct_dataset_name(path: Path, given: str | None = None) -> str:
    """The dataset a CCT file holds: ``given``, else its file name without ``.json`` and the
    ``_cct``/``_coco`` suffix of the seed's convention (``idfg_cct.json`` → ``idfg``)."""
    from ct_io.sources.common import dataset_name_from_file

    return given or dataset_name_from_file(Path(path))


def cct_image_table(
    ds: CocoCameraTraps, dataset: str, *, pseudo: PseudoMode = "sequence"
) -> pd.DataFrame:
    """One row per CCT image: ``image`` (file_name), dataset, location, dataset_class and
    label (its category names, comma-joined), ``seq_id`` when present, ``image_id``."""
    images = fill_locations_from_sequences(ds.images)
    filled = CocoCameraTraps(
        images=images,
        annotations=ds.annotations,
        categories=ds.categories,
        info=ds.info,
        extra=ds.extra,
    )
    locations = image_locations(filled, pseudo=pseudo)
    names = ds.category_names
    an = ds.annotations[["image_id", "category_id"]].copy()
    an["name"] = an["category_id"].map(names).astype(str)
    per_image = (
        an.drop_duplicates(["image_id", "name"])
        .sort_values("name", kind="stable")
        .groupby("image_id", sort=False)["name"]
        .agg(",".join)
    )
    frame = pd.DataFrame(
        {
            "image": images["file_name"].astype(str),
            "image_id": images["id"],
            "dataset": dataset,
            "location": locations.to_numpy(),
            "label": images["id"].map(per_image).to_numpy(),
        }
    )
    frame["dataset_class"] = frame["label"]
    if "seq_id" in images.columns:
        frame["seq_id"] = images["seq_id"].to_numpy()
    return frame


def image_table(
    *,
    queried_images: Path | None = None,
    cct: Path | None = None,
    dataset_name: str | None = None,
    pseudo: PseudoMode = "sequence",
) -> pd.DataFrame:
    """The images of ``queried_images.json`` or of a CCT file (dataset ``dataset_name``,
    default the file name without ``.json`` and ``_cct``): exactly one of them."""
    from ct_io.tables import read_queried_images

    if (queried_images is None) == (cct is None):
        raise CamtrapError("give exactly one of --queried-images and --cct")
    if cct is not None:
        from ct_io.cct import read_cct

        return cct_image_table(read_cct(cct), cct_dataset_name(cct, dataset_name), pseudo=pseudo)
    assert queried_images is not None
    return images_from_queried(read_queried_images(queried_images), pseudo=pseudo)


# ---------------------------------------------------------------- crops


def clip_of_frames(images: pd.Series) -> pd.Series:
    """The clip of each video frame (``clip.mp4/frame000120.jpg`` → ``clip.mp4``), else NaN."""
    from ct_io.video import parse_frame_file

    return images.map(lambda f: ref[0] if (ref := parse_frame_file(str(f))) else None)


def _image_key(manifest: pd.DataFrame, images: pd.DataFrame) -> pd.Series:
    """Manifest image → key of ``images``: exact, else by ``<dataset>/`` prefix removed or
    added; a video frame's key is its clip's."""
    keys = pd.Index(images["image"])
    names = clip_of_frames(manifest["image"]).fillna(manifest["image"])
    direct = names.where(names.isin(keys))
    if direct.notna().all():
        return direct
    # a manifest written relative to an images folder that holds one folder per dataset
    stripped = names.str.split("/", n=1).str[-1]
    by_file = images.assign(_file=images["image"].str.split("/", n=1).str[-1]).drop_duplicates(
        "_file", keep=False
    )
    lookup = pd.Series(by_file["image"].to_numpy(), index=by_file["_file"].to_numpy())
    return direct.fillna(names.map(lookup)).fillna(stripped.map(lookup))


def build_dataset(
    images: pd.DataFrame,
    manifest: pd.DataFrame,
    *,
    threshold: float = 0.0,
    crops_dir: str | os.PathLike[str] | None = None,
    detector_categories: Collection[str] = DETECTOR_CATEGORIES,
    gt_category_is_label: bool = False,
) -> tuple[pd.DataFrame, DatasetLog]:
    """Join crops to their images → the dataset table (sorted by path) and a log.

    Rows are skipped (and counted) when the image was not selected, the detector box is
    below ``threshold`` or not in ``detector_categories``, the crop path is unsafe, or the
    crop file is missing under ``crops_dir``. With ``gt_category_is_label`` (CCT input) a
    ground-truth crop takes its own box's category as label.
    """
    if not 0.0 <= threshold <= 1.0:
        raise CamtrapError(f"--threshold must be between 0 and 1, got {threshold}")
    report = DatasetLog()
    dup = images["image"].duplicated()
    if dup.any():
        log.warning("%d images are listed twice; the first entry of each is used", int(dup.sum()))
        images = images[~dup]
    m = manifest.copy()
    m["_key"] = _image_key(m, images)
    keep = m["_key"].notna()
    report.skipped["image not among the selected images"] += int((~keep).sum())
    conf_ok = m["confidence"].fillna(-1.0) >= threshold
    is_det = m["source"] == "detector"
    drop = keep & is_det & ~conf_ok
    report.skipped[f"detector confidence below {threshold}"] += int(drop.sum())
    keep &= ~drop
    wrong_cat = (
        keep & is_det & (m["category"] != "") & ~m["category"].isin(list(detector_categories))
    )
    report.skipped[f"detector category not in {', '.join(detector_categories)}"] += int(
        wrong_cat.sum()
    )
    keep &= ~wrong_cat
    suspicious = keep & unsafe_mask(m["crop"])
    if suspicious.any():
        bad = suspicious & m["crop"].map(lambda p: unsafe_reason(p) is not None)
        for p in m.loc[bad, "crop"].head(3):
            log.warning("refusing crop path %r: %s", p, unsafe_reason(p))
        report.skipped["unsafe crop path"] += int(bad.sum())
        keep &= ~bad
    if crops_dir is not None:
        root = Path(crops_dir)
        exists = m.loc[keep, "crop"].map(lambda p: (root / p).is_file())
        report.skipped["crop file missing"] += int((~exists).sum())
        keep.loc[exists.index[~exists.to_numpy()]] = False
    m = m[keep]
    joined = m.merge(
        images.rename(columns={"image": "_key"}), on="_key", how="left", validate="many_to_one"
    )
    if gt_category_is_label:
        gt = (joined["source"] == "gt") & (joined["category"] != "")
        joined.loc[gt, "label"] = joined.loc[gt, "category"]
    no_label = joined["label"].isna() | (joined["label"].astype(str) == "")
    report.skipped["image has no label"] += int(no_label.sum())
    joined = joined[~no_label]
    out = pd.DataFrame(
        {
            "path": joined["crop"].astype(str),
            "dataset": joined["dataset"].astype(str),
            "location": joined["location"].astype(str),
            "dataset_class": joined["dataset_class"].fillna("").astype(str),
            "confidence": joined["confidence"].astype(float),
            "label": joined["label"].astype(str),
            "image": joined["_key"].astype(str),
        }
    )
    if "seq_id" in joined.columns:
        out["seq_id"] = joined["seq_id"].to_numpy()
    clips = clip_of_frames(joined["image"])
    if clips.notna().any():  # a clip is a sequence: its frames never straddle two splits
        clip_seq = ("clip:" + out["image"]).where(clips.notna(), None)
        out["seq_id"] = (
            out["seq_id"].where(out["seq_id"].notna(), clip_seq) if "seq_id" in out else clip_seq
        )
    report.skipped = Counter({k: v for k, v in report.skipped.items() if v})
    out = out.sort_values("path", kind="stable").reset_index(drop=True)
    unknown = out["location"].str.startswith(UNKNOWN_LOCATION)
    report.unknown_location_rows = int(unknown.sum())
    if report.unknown_location_rows:
        per_ds = out.loc[unknown, "dataset"].value_counts()
        log.warning(
            "%d of %d crops have no location (%s); they use %d pseudo-location(s) named %s…",
            report.unknown_location_rows,
            len(out),
            ", ".join(f"{d}: {n}" for d, n in per_ds.items()),
            out.loc[unknown, "location"].nunique(),
            UNKNOWN_LOCATION,
        )
    return out, report


# ---------------------------------------------------------------- filters


def drop_rare_labels(frame: pd.DataFrame, min_locs: int) -> tuple[pd.DataFrame, list[str]]:
    """Drop labels that occur at fewer than ``min_locs`` locations.

    Each label of a multi-label row (``carnivore,fox``) counts on its own: a rare label
    leaves the rows it is on, and a row left with no label is dropped.
    """
    if min_locs <= 1 or frame.empty:
        return frame, []
    frame = frame.reset_index(drop=True)
    labels = split_labels(frame["label"])
    locs = (frame["dataset"] + "\x1f" + frame["location"]).to_numpy()[labels.index.to_numpy()]
    per_label = pd.DataFrame({"label": labels.to_numpy(), "loc": locs})
    n_locs = per_label.drop_duplicates().groupby("label").size()
    rare = sorted(n_locs.index[n_locs < min_locs])
    if not rare:
        return frame, []
    log.warning("--min-locs %d drops %d label(s): %s", min_locs, len(rare), ", ".join(rare))
    kept = labels[~labels.isin(rare)]
    joined = kept.groupby(level=0).agg(",".join).reindex(frame.index)
    out = frame.assign(label=joined)
    return out[out["label"].notna()].reset_index(drop=True), rare


def match_test(
    frame: pd.DataFrame, earlier: pd.DataFrame, test_locations: Collection[tuple[str, str]]
) -> tuple[pd.DataFrame, int]:
    """Replace crops at the earlier test locations with the earlier table's crops there."""
    wanted = {f"{d}\x1f{loc}" for d, loc in test_locations}
    key_new = frame["dataset"].astype(str) + "\x1f" + frame["location"].astype(str)
    key_old = earlier["dataset"].astype(str) + "\x1f" + earlier["location"].astype(str)
    old = earlier[key_old.isin(wanted)]
    kept = frame[~key_new.isin(wanted)]
    log.info(
        "--match-test: %d crops at earlier test locations replaced by %d earlier crops",
        int(key_new.isin(wanted).sum()),
        len(old),
    )
    out = pd.concat([kept, old], ignore_index=True, sort=False)
    out = out.sort_values("path", kind="stable").reset_index(drop=True)
    return out, len(old)


def finish_dataset(
    frame: pd.DataFrame,
    report: DatasetLog,
    *,
    min_locs: int | None = None,
    match_test_files: tuple[Path, Path] | None = None,
) -> pd.DataFrame:
    """Drop labels at fewer than ``min_locs`` locations, reuse an earlier test set
    (``classification_ds.csv``, ``splits.json``); refuse a table left empty."""
    from ct_io.tables import read_classification_ds, read_splits

    if min_locs:
        frame, report.dropped_labels = drop_rare_labels(frame, min_locs)
    if match_test_files is not None:
        earlier, splits = match_test_files
        frame, report.appended_test_rows = match_test(
            frame, read_classification_ds(earlier), read_splits(splits).test
        )
    if frame.empty:
        raise CamtrapError(
            "no crops left for the dataset — "
            + ("; ".join(report.lines()) or "is the manifest empty?")
        )
    return frame


def label_names(frame: pd.DataFrame) -> list[str]:
    """Sorted label names (a comma-separated label counts each of its labels)."""
    if frame.empty:
        return []
    return sorted(set(split_labels(frame["label"]).tolist()))


def check_columns(frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in CLASSIFICATION_DS_COLUMNS if c not in frame.columns]
    if missing:
        raise CamtrapError(f"{source}: missing column(s) {', '.join(missing)}")


__all__: Sequence[str] = [
    "DatasetLog",
    "build_dataset",
    "cct_image_table",
    "drop_rare_labels",
    "images_from_queried",
    "label_names",
    "match_test",
]
