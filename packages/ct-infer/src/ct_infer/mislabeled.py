"""Mislabel review: find crops whose prediction beats their label, and save what a
person confirmed in Timelapse as the known-mislabeled list ct-taxonomy applies.

A candidate is a crop predicted as another label than its own, with
``p(predicted) - p(true label) >= margin``. True labels come from the evaluation
outputs' ``label`` column, or from a COCO Camera Traps file (:func:`labels_from_cct`:
a ground-truth box's category, else the image's one category). Lists are written per
split and dataset (``mislabeled_candidates_{split}_{dataset}.txt``, one image per line,
the seed's format), with a Timelapse review file beside each
(``mislabeled_candidates_{split}_{dataset}.json``, see :func:`review_documents`).

A crop's dataset comes from the dataset table (``classification_ds.csv``'s ``dataset``
column, by path), a name given for all, or else the crop path's first folder.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from attrs import define

from ct_infer.crops import parse_crop_name
from ct_io.atomic import write_text_atomic
from ct_io.cct import CocoCameraTraps
from ct_io.errors import CamtrapError
from ct_io.md import MDResults
from ct_io.tables import read_csv, write_csv

log = logging.getLogger(__name__)

TRUE_VALUES = {"true", "1", "yes", "y", "x", "checked"}


def split_outputs(
    outputs: Path, splits: Sequence[str] | None = None
) -> tuple[dict[str, Path], Path]:
    """The classifier outputs to scan, by split, and the folder they lie in.

    ``outputs`` is a folder of ``outputs_{split}.csv.gz`` (from evaluate; ``splits``
    picks some) or one classifier CSV, which is split ``all``.
    """
    if outputs.is_dir():
        found = {
            f.name[len("outputs_") : -len(".csv.gz")]: f
            for f in sorted(outputs.glob("outputs_*.csv.gz"))
        }
        folder = outputs
    elif outputs.is_file():
        found, folder = {"all": outputs}, outputs.parent
    else:
        raise CamtrapError(f"{outputs}: no such folder or file")
    if splits:
        missing = [s for s in splits if s not in found]
        if missing:
            raise CamtrapError(f"no outputs_{missing[0]}.csv.gz in {outputs}")
        found = {s: found[s] for s in splits}
    if not found:
        raise CamtrapError(f"{outputs}: no outputs_<split>.csv.gz — run `ct-infer evaluate` first")
    return found, folder


def find_candidates(
    outputs: pd.DataFrame,
    labels: Sequence[str],
    margin: float,
    datasets: Mapping[str, str] | str | None = None,
) -> pd.DataFrame:
    """Rows of ``outputs`` (path, label, probabilities) whose prediction beats the label by ``margin``.

    Columns: ``path, label, predicted, margin, image, dataset``, largest margin first.
    ``datasets``: crop path → dataset, one dataset for all, or None (first folder).
    """
    probs = outputs[list(labels)].to_numpy(np.float64)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(outputs["label"]) - set(index))
    if unknown:
        raise CamtrapError(
            f"true label(s) not among the outputs' label columns: {', '.join(unknown[:5])}"
        )
    true_idx = outputs["label"].map(index).to_numpy()
    rows = np.arange(len(outputs))
    predicted = probs.argmax(axis=1)
    margins = probs[rows, predicted] - probs[rows, true_idx]
    keep = (predicted != true_idx) & (margins >= margin)
    out = outputs.loc[keep, ["path", "label"]].copy()
    out["predicted"] = [labels[i] for i in predicted[keep]]
    out["margin"] = margins[keep]
    out["image"] = [_image_of(p) for p in out["path"]]
    out["dataset"] = [
        _dataset_of(p, i, datasets) for p, i in zip(out["path"], out["image"], strict=True)
    ]
    return out.sort_values("margin", ascending=False, kind="stable").reset_index(drop=True)


def _image_of(path: str) -> str:
    ref = parse_crop_name(path)
    return ref.file if ref else path


def _dataset_of(path: str, image: str, datasets: Mapping[str, str] | str | None) -> str:
    if isinstance(datasets, str):
        return datasets
    if datasets is not None and path in datasets:
        return datasets[path]
    parts = PurePosixPath(image).parts
    return parts[0] if len(parts) > 1 else ""


def datasets_from_table(path: str | os.PathLike[str]) -> dict[str, str]:
    """Crop path → dataset, from a ``classification_ds.csv``."""
    frame = read_csv(path, required=["path", "dataset"], dtype={"path": str, "dataset": str})
    return dict(zip(frame["path"], frame["dataset"].fillna(""), strict=True))


def listed_name(image: str, dataset: str, include_dataset: bool) -> str:
    """An image as the lists name it: without its dataset folder unless ``include_dataset``."""
    if not include_dataset and dataset and image.startswith(dataset + "/"):
        return image[len(dataset) + 1 :]
    return image


def write_candidate_lists(
    candidates: pd.DataFrame, split: str, out_dir: Path, *, include_dataset: bool = False
) -> list[Path]:
    """One ``mislabeled_candidates_{split}_{dataset}.txt`` per dataset; returns the files."""
    written = []
    for dataset, group in candidates.groupby("dataset", sort=True):
        images = sorted({listed_name(i, str(dataset), include_dataset) for i in group["image"]})
        path = out_dir / f"mislabeled_candidates_{split}_{dataset or 'all'}.txt"
        write_text_atomic(path, "".join(f"{i}\n" for i in images))
        written.append(path)
    return written


def review_documents(
    merged: MDResults,
    candidates: pd.DataFrame,
    *,
    strip_prefix: str = "",
    include_dataset: bool = False,
) -> dict[str, MDResults]:
    """Per dataset, ``merged`` cut down to the candidate images, named as in the lists.

    ``merged`` is the MD JSON with the candidates' margins merged in (``relative_conf``);
    ``strip_prefix`` is the one the merge used to match crop paths to its file names.
    """
    prefix = strip_prefix.strip("/") + "/" if strip_prefix else ""
    by_file = merged.by_file()
    out: dict[str, MDResults] = {}
    for dataset, group in candidates.groupby("dataset", sort=True):
        images = []
        for image in sorted(set(group["image"])):
            md_file = image[len(prefix) :] if prefix and image.startswith(prefix) else image
            found = by_file.get(md_file)
            if found is None:
                continue
            entry = copy.deepcopy(found)
            entry.file = listed_name(image, str(dataset), include_dataset)
            images.append(entry)
        doc = copy.copy(merged)
        doc.images = images
        out[str(dataset) or "all"] = doc
    return out


def labels_from_cct(
    paths: Sequence[str], cct: CocoCameraTraps, strip_prefix: str = ""
) -> list[str | None]:
    """True label of each crop from a CCT: its ground-truth box's category (crops without a
    detector suffix), else its image's category when the image has exactly one."""
    from ct_crop.boxes import gt_boxes
    from ct_io.indexes import image_labels

    boxes, _sizes = gt_boxes(cct)
    per_image = image_labels(cct).groupby("file_name")["category"].agg(lambda c: sorted(set(c)))
    prefix = strip_prefix.strip("/") + "/" if strip_prefix else ""
    out: list[str | None] = []
    for path in paths:
        ref = parse_crop_name(path)
        if ref is None:
            out.append(None)
            continue
        file = ref.file[len(prefix) :] if prefix and ref.file.startswith(prefix) else ref.file
        if ref.version is None:  # a ground-truth box
            specs = {b.index: b for b in boxes.get(file, [])}
            out.append(specs[ref.index].category if ref.index in specs else None)
            continue
        cats = per_image.get(file)
        out.append(cats[0] if cats is not None and len(cats) == 1 else None)
    return out


def with_cct_labels(
    frame: pd.DataFrame, labels: Sequence[str], cct: CocoCameraTraps, strip_prefix: str = ""
) -> tuple[pd.DataFrame, int]:
    """``frame`` with a ``label`` column from ``cct`` (matched to ``labels`` ignoring case);
    rows without a usable label are dropped. Returns the frame and how many were dropped."""
    found = labels_from_cct(frame["path"].astype(str).tolist(), cct, strip_prefix)
    by_lower = {label.lower(): label for label in labels}
    names = [by_lower.get(str(c).lower()) if c is not None else None for c in found]
    kept = frame.assign(label=names)
    dropped = kept["label"].isna()
    return kept[~dropped].reset_index(drop=True), int(dropped.sum())


@define
class SplitCandidates:
    """What the review found in one split's outputs."""

    split: str
    crops: int
    candidates: int
    lists: int


def review_split(
    split: str,
    outputs: Path,
    out_dir: Path,
    *,
    margin: float,
    datasets: Mapping[str, str] | str | None = None,
    truth: CocoCameraTraps | None = None,
    boxes: tuple[MDResults, dict[tuple[str, int], int] | None] | None = None,
    strip_prefix: str = "",
    include_dataset: bool = False,
) -> SplitCandidates:
    """Write one split's candidates: ``mislabeled_candidates_{split}.csv``, the per-dataset
    lists and, given ``boxes`` (the MD JSON the crops came from, with the ground-truth
    index of :func:`ct_infer.ground_truth.add_ground_truth`), the Timelapse review files.
    True labels are the outputs' ``label`` column, else ``truth``'s."""
    from ct_infer.merge import read_classifier_csv

    frame, labels = read_classifier_csv(str(outputs))
    if truth is not None and "label" not in frame.columns:
        frame, dropped = with_cct_labels(frame, labels, truth, strip_prefix)
        if dropped:
            log.warning(
                "%s: %d crop(s) left out: the CCT gives them no single label that is one of "
                "the classifier's",
                split,
                dropped,
            )
    if "label" not in frame.columns:
        raise CamtrapError(
            f"{outputs}: no 'label' column — give --cct with the true labels, or use evaluate's outputs"
        )
    candidates = find_candidates(frame, labels, margin, datasets)
    lists = write_candidate_lists(candidates, split, out_dir, include_dataset=include_dataset)
    write_csv(candidates, out_dir / f"mislabeled_candidates_{split}.csv")
    if boxes is not None:
        write_review_files(
            boxes,
            frame[frame["path"].isin(set(candidates["path"]))],
            labels,
            candidates,
            out_dir / f"mislabeled_candidates_{split}",
            strip_prefix=strip_prefix,
            include_dataset=include_dataset,
        )
    return SplitCandidates(split, len(frame), len(candidates), len(lists))


def write_review_files(
    boxes: tuple[MDResults, dict[tuple[str, int], int] | None],
    subset: pd.DataFrame,
    labels: list[str],
    candidates: pd.DataFrame,
    stem: Path,
    *,
    strip_prefix: str,
    include_dataset: bool,
) -> None:
    """One Timelapse review file per dataset, ``{stem}_{dataset}.json``: the candidates'
    boxes with each class's margin over the true label."""
    from ct_infer.merge import MergeOptions, merge_classifications
    from ct_io.md import write_md

    base_md, gt_index = boxes
    merged, report = merge_classifications(
        base_md,
        subset,
        labels,
        MergeOptions(
            classifier_name="mislabel-review",
            threshold=0.0,
            relative_conf=True,
            label="last",
            strip_prefix=strip_prefix,
            allow_unmatched=True,  # warned about below; the candidate lists are written
        ),
        gt_index=gt_index,
    )
    if report.unmatched or report.unparsable:
        log.warning(
            "%d candidate crop(s) match no box of --detections/--cct; give the other one, "
            "or --strip-prefix",
            len(report.unmatched) + len(report.unparsable),
        )
    docs = review_documents(
        merged, candidates, strip_prefix=strip_prefix, include_dataset=include_dataset
    )
    for name, doc in docs.items():
        write_md(doc, stem.with_name(f"{stem.name}_{name}.json"))


def read_timelapse_export(
    path: str | os.PathLike[str], flag: str = "mislabeled", note: str = "correct_class"
) -> pd.DataFrame:
    """Rows a reviewer flagged in a Timelapse CSV export: ``file`` (relative path) and ``correct_class``."""
    frame = read_csv(path)
    frame = frame.astype(object).where(frame.notna(), "").astype(str)
    columns = {c.lower(): c for c in frame.columns}
    if "file" not in columns or flag.lower() not in columns:
        raise CamtrapError(
            f"{path}: a Timelapse export needs columns File and {flag} (found: {', '.join(frame.columns)})"
        )
    flagged = frame[frame[columns[flag.lower()]].str.strip().str.lower().isin(TRUE_VALUES)]
    rel = (
        flagged[columns["relativepath"]].fillna("")
        if "relativepath" in columns
        else pd.Series("", index=flagged.index)
    )
    files = [
        str(PurePosixPath(r.replace("\\", "/")) / f) if r else f
        for r, f in zip(rel, flagged[columns["file"]], strict=True)
    ]
    correct = (
        flagged[columns[note.lower()]].fillna("").str.strip().str.lower()
        if note.lower() in columns
        else pd.Series("", index=flagged.index)
    )
    return pd.DataFrame({"file": files, "correct_class": correct.to_numpy()})


def save_mislabeled(
    reviewed: pd.DataFrame, mislabeled_dir: str | os.PathLike[str], dataset: str | None = None
) -> dict[str, int]:
    """Add reviewed rows to ``<mislabeled_dir>/<dataset>.csv`` (``file, correct_class``); returns rows per dataset.

    Without ``dataset`` each file's first folder names its dataset (and is removed from it).
    A file already listed is updated (the latest review wins).
    """
    folder = Path(mislabeled_dir)
    if dataset:
        groups = {dataset: reviewed}
    else:
        parts = reviewed["file"].str.split("/", n=1)
        if (parts.str.len() < 2).any():
            raise CamtrapError("file paths carry no dataset folder; give --dataset NAME")
        reviewed = reviewed.assign(dataset=parts.str[0], file=parts.str[1])
        groups = {str(k): g.drop(columns="dataset") for k, g in reviewed.groupby("dataset")}
    counts = {}
    for name, rows in groups.items():
        from ct_io.paths import safe_join

        target = safe_join(folder, f"{name}.csv")
        old = (
            read_csv(target, dtype={"file": str, "correct_class": str})
            if target.is_file()
            else pd.DataFrame(columns=["file", "correct_class"])
        )
        merged = pd.concat(
            [old[["file", "correct_class"]], rows[["file", "correct_class"]]], ignore_index=True
        )
        merged = merged.drop_duplicates("file", keep="last").sort_values("file", kind="stable")
        write_csv(merged.fillna(""), target)
        counts[name] = len(rows)
    return counts
