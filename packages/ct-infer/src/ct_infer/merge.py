"""``ct-infer merge``: classifier probabilities into a MegaDetector JSON, for Timelapse.

Each classifier CSV row names a crop (``a/b.jpg___crop02_v5a.jpg``), hence one detection
of one image. The merged file gets ``classification_categories`` (label-index ids) and per
detection ``classifications: [[id, conf], ...]`` sorted by confidence, filtered by
``threshold`` and ``top_k``. For mislabel review, ``relative_conf`` stores each class's
margin over the true label, and ``label`` adds the true label as an extra
``"label: <name>"`` category, first or last. With ``rollup_threshold`` (and label
lineages, see :mod:`ct_infer.rollup`), a detection whose best label stays below the
threshold gets the lowest taxon that reaches it first, as a ``"rollup: <level> <name>"``
category (after smoothing, when sequences are given).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from attrs import define, field

from ct_infer.crops import parse_crop_name
from ct_infer.smoothing import smooth
from ct_io.errors import CamtrapError
from ct_io.md import MDResults
from ct_taxonomy.rollup import LABEL_LEVEL, Lineage, rollup_array

log = logging.getLogger(__name__)

TRUE_LABEL_PREFIX = "label: "
ROLLUP_PREFIX = "rollup: "
MIN_FORMAT_VERSION = 1.3


@define
class MergeOptions:
    """How classifications are written into the detector output."""

    classifier_name: str = "classifier"
    threshold: float = 0.0
    top_k: int | None = None
    relative_conf: bool = False
    label: Literal["first", "last"] | None = None
    #: Leading folder to strip from crop paths before matching ``file`` (e.g. a dataset name).
    strip_prefix: str = ""
    #: Image file → sequence id; when given, predictions are smoothed within sequences.
    sequences: Mapping[str, str] | None = None
    smoothing: float = 0.5
    #: Taxonomic rollup threshold (None: no rollup) and label → root-first lineage.
    rollup_threshold: float | None = None
    lineages: Mapping[str, Lineage] = field(factory=dict)


@define
class MergeReport:
    """What a merge matched."""

    rows: int = 0
    matched: int = 0
    unparsable: list[str] = field(factory=list)
    unmatched: list[str] = field(factory=list)
    #: Detections whose first class is a taxon above the labels (rollup).
    rolled_up: int = 0
    #: Video clips that got a roll-up over their frames (``clip_classifications``).
    clips: int = 0


def _match_rows(
    paths: Sequence[str],
    md: MDResults,
    strip_prefix: str,
    gt_index: Mapping[tuple[str, int], int] | None = None,
) -> tuple[list[tuple[int, int, int]], MergeReport]:
    """(row, image position, detection index) for each row that names a detection.

    Crops without a detector suffix are ground-truth boxes: ``gt_index`` maps them.
    """
    position = {im.file: i for i, im in enumerate(md.images)}
    prefix = strip_prefix.strip("/") + "/" if strip_prefix else ""
    report = MergeReport(rows=len(paths))
    matches: list[tuple[int, int, int]] = []
    for r, path in enumerate(paths):
        ref = parse_crop_name(path)
        if ref is None:
            report.unparsable.append(path)
            continue
        file = ref.file[len(prefix) :] if prefix and ref.file.startswith(prefix) else ref.file
        i = position.get(file)
        dets = md.images[i].detections if i is not None else None
        k = ref.index
        if gt_index is not None and ref.version is None:
            k = gt_index.get((file, ref.index), -1)
        if i is None or dets is None or not 0 <= k < len(dets):
            report.unmatched.append(path)
            continue
        matches.append((r, i, k))
    report.matched = len(matches)
    return matches, report


def merge_classifications(
    md: MDResults,
    outputs: pd.DataFrame,
    labels: Sequence[str],
    options: MergeOptions,
    *,
    gt_index: Mapping[tuple[str, int], int] | None = None,
) -> tuple[MDResults, MergeReport]:
    """A copy of ``md`` with the classifications of ``outputs`` (``path`` + label columns).

    ``gt_index`` (from ``ct_infer.ground_truth.add_ground_truth``) maps crops of
    ground-truth boxes to their detections. Video frames are entries like photos
    (``clip.mp4/frame000120.jpg``); :func:`ct_infer.video_merge.merge_media` also takes
    per-video entries and rolls clips up.
    """
    missing = [label for label in labels if label not in outputs.columns]
    if missing:
        raise CamtrapError(
            f"classifier CSV lacks column(s) for label(s) {', '.join(missing[:5])} — wrong label index?"
        )
    if (options.relative_conf or options.label) and "label" not in outputs.columns:
        raise CamtrapError(
            "--relative-conf and --label need a 'label' column (true labels), as in outputs_{split}.csv.gz"
        )
    result = copy.deepcopy(md)
    matches, report = _match_rows(
        outputs["path"].astype(str).tolist(), result, options.strip_prefix, gt_index
    )
    probs = outputs[list(labels)].to_numpy(np.float64)
    rows = np.array([r for r, _, _ in matches], dtype=np.int64)
    if options.sequences is not None and len(rows):
        groups = [options.sequences.get(result.images[i].file) for _, i, _ in matches]
        confs = np.array([result.images[i].detections[k].conf for _, i, k in matches])  # type: ignore[index]
        probs[rows] = smooth(probs[rows], groups, confs, options.smoothing)
    index = {label: j for j, label in enumerate(labels)}
    true_labels = outputs["label"].astype(str).tolist() if "label" in outputs.columns else None
    categories = {str(j): label for j, label in enumerate(labels)}
    if options.label:
        categories.update(
            {str(len(labels) + j): TRUE_LABEL_PREFIX + label for j, label in enumerate(labels)}
        )
    rollups = _rollups(probs[rows], labels, options) if len(rows) else None
    rollup_ids: dict[str, str] = {}
    for m, (r, i, k) in enumerate(matches):
        det = result.images[i].detections[k]  # type: ignore[index]
        det.classifications = _classifications(
            probs[r], index, true_labels[r] if true_labels else None, options
        )
        if rollups is not None and rollups[m] is not None:
            name, conf = rollups[m]  # type: ignore[misc]
            cid = rollup_ids.setdefault(name, str(len(categories)))
            categories[cid] = name
            det.classifications = [[cid, conf], *det.classifications]
            report.rolled_up += 1
    result.classification_categories = categories
    _stamp_info(result, options)
    if report.unmatched or report.unparsable:
        log.warning(
            "%d of %d rows matched a detection; %d name no detection of the MD JSON (e.g. %s), %d are not crop names",
            report.matched,
            report.rows,
            len(report.unmatched),
            report.unmatched[:1],
            len(report.unparsable),
        )
    return result, report


def _rollups(
    probs: np.ndarray, labels: Sequence[str], options: MergeOptions
) -> list[tuple[str, float] | None] | None:
    """Per matched row, ``("rollup: <level> <name>", conf)`` where a taxon answers, else None."""
    if options.rollup_threshold is None:
        return None
    names, levels, confs = rollup_array(probs, labels, options.lineages, options.rollup_threshold)
    return [
        (f"{ROLLUP_PREFIX}{level} {name}", round(float(conf), 4))
        if level not in ("", LABEL_LEVEL)
        else None
        for name, level, conf in zip(names, levels, confs, strict=True)
    ]


def _classifications(
    p: np.ndarray, index: Mapping[str, int], true_label: str | None, options: MergeOptions
) -> list[list[object]]:
    values = p.copy()
    if options.relative_conf:
        if true_label not in index:
            raise CamtrapError(f"true label {true_label!r} is not among the classifier's labels")
        values = values - p[index[true_label]]  # type: ignore[index]
        values[index[true_label]] = -np.inf  # type: ignore[index]
        keep = values > max(options.threshold, 0.0)
    else:
        keep = values >= options.threshold
    order = [j for j in np.argsort(-values, kind="stable") if keep[j]]
    if options.top_k is not None:
        order = order[: options.top_k]
    out: list[list[object]] = [[str(j), round(float(values[j]), 4)] for j in order]
    if options.label and true_label is not None:
        if true_label not in index:
            raise CamtrapError(f"true label {true_label!r} is not among the classifier's labels")
        entry: list[object] = [str(len(index) + index[true_label]), 1.0]
        out = [entry, *out] if options.label == "first" else [*out, entry]
    return out


def _stamp_info(result: MDResults, options: MergeOptions) -> None:
    info = result.info
    try:
        if float(info.format_version) < MIN_FORMAT_VERSION:
            info.format_version = "1.5"
    except ValueError:
        info.format_version = "1.5"
    info.classifier = options.classifier_name
    info.classification_completion_time = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    if options.threshold:
        meta = dict(info.extra.get("classifier_metadata") or {})
        meta["typical_classification_threshold"] = options.threshold
        info.extra["classifier_metadata"] = meta


def read_classifier_csv(
    path: str, label_index: Sequence[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """A classifier CSV and its labels (from ``label_index`` or the columns after path/label/weight)."""
    from ct_io.tables import read_csv

    frame = read_csv(path, required=["path"], dtype={"path": str, "label": str})
    labels = (
        list(label_index)
        if label_index
        else [c for c in frame.columns if c not in ("path", "label", "weight")]
    )
    return frame, labels
