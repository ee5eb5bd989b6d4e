"""``ct-infer merge``: classifier probabilities into a MegaDetector JSON, for Timelapse.

Each classifier CSV row names a crop (``a/b.jpg___crop02_v5a.jpg``), hence one detection
of one image. The merged file gets ``classification_categories`` (label-index ids) and per
detection ``classifications: [[id, conf], ...]`` sorted by confidence, filtered by
``threshold`` (the seed's default, 0.1) and ``top_k`` — for a multi-label classifier,
every label above the threshold, each its own sigmoid. For mislabel review,
``relative_conf`` stores each class's margin over the true label, and ``label`` adds the
true label as an extra ``"label: <name>"`` category, first or last. A CSV with true labels
and no probability columns (``classification_ds.csv``) merges its true labels only. A
merge that matches no row is an error that shows a crop's image beside the MD JSON's. With ``rollup_threshold`` (and label
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
from ct_infer.multilabel import split_labels
from ct_infer.review_subset import ReviewSubset, keep_images, select_rows
from ct_infer.smoothing import smooth
from ct_io.errors import CamtrapError, EmptyResultError
from ct_io.md import TRUE_LABEL_PREFIX, MDResults
from ct_taxonomy.rollup import LABEL_LEVEL, Lineage, rollup_array

log = logging.getLogger(__name__)

ROLLUP_PREFIX = "rollup: "
MIN_FORMAT_VERSION = 1.3
#: The seed's default ``--threshold``: classes below it are left out of a detection's list.
DEFAULT_THRESHOLD = 0.1
#: Columns of the project's tables that are never class probabilities.
METADATA_COLUMNS = frozenset(
    {"path", "label", "weight", "dataset", "location", "dataset_class", "confidence", "split"}
)


@define
class MergeOptions:
    """How classifications are written into the detector output."""

    classifier_name: str = "classifier"
    threshold: float = DEFAULT_THRESHOLD
    #: Written to ``classifier_metadata.typical_classification_threshold`` for readers such
    #: as Timelapse (a suggested cut-off); filters nothing, unlike ``threshold``.
    typical_threshold: float | None = None
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
    #: Only some datasets, or a few crops per label (the seed's review subsets).
    subset: ReviewSubset = field(factory=ReviewSubset)
    #: Merging no row at all is an error unless this is set (review subsets may be empty).
    allow_unmatched: bool = False


@define
class MergeReport:
    """What a merge matched."""

    rows: int = 0
    matched: int = 0
    unparsable: list[str] = field(factory=list)
    unmatched: list[str] = field(factory=list)
    #: The CSV had true labels and no probability columns: only true labels were merged.
    labels_only: bool = False
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
    has_probs = has_probabilities(outputs, labels)
    if (options.relative_conf or options.label or not has_probs) and "label" not in outputs.columns:
        raise CamtrapError(
            "--relative-conf and --label need a 'label' column (true labels), as in outputs_{split}.csv.gz"
        )
    if not has_probs and (options.relative_conf or options.rollup_threshold is not None):
        raise CamtrapError(
            "the CSV has true labels only (no probability column per label): "
            "--relative-conf and --rollup need a classifier's outputs"
        )
    if options.subset.active:
        outputs = select_rows(outputs, labels, options.subset)
    result = copy.deepcopy(md)
    matches, report = _match_rows(
        outputs["path"].astype(str).tolist(), result, options.strip_prefix, gt_index
    )
    report.labels_only = not has_probs
    if not report.matched and report.rows and not options.allow_unmatched:
        raise nothing_merged(report, result)
    probs = (
        outputs[list(labels)].to_numpy(np.float64)
        if has_probs
        else np.zeros((len(outputs), 0), np.float64)
    )
    rows = np.array([r for r, _, _ in matches], dtype=np.int64)
    if options.sequences is not None and len(rows) and has_probs:
        groups = [options.sequences.get(result.images[i].file) for _, i, _ in matches]
        confs = np.array([result.images[i].detections[k].conf for _, i, k in matches])  # type: ignore[index]
        probs[rows] = smooth(probs[rows], groups, confs, options.smoothing)
    index = {label: j for j, label in enumerate(labels)}
    true_labels = outputs["label"].astype(str).tolist() if "label" in outputs.columns else None
    label_pos = options.label or ("first" if not has_probs else None)
    categories = {} if not has_probs else {str(j): label for j, label in enumerate(labels)}
    if label_pos:
        categories.update(
            {str(len(labels) + j): TRUE_LABEL_PREFIX + label for j, label in enumerate(labels)}
        )
    rollups = _rollups(probs[rows], labels, options) if len(rows) else None
    rollup_ids: dict[str, str] = {}
    for m, (r, i, k) in enumerate(matches):
        det = result.images[i].detections[k]  # type: ignore[index]
        truth = true_labels[r] if true_labels else None
        predicted = _classifications(probs[r], index, truth, options) if has_probs else []
        if rollups is not None and rollups[m] is not None:
            name, conf = rollups[m]  # type: ignore[misc]
            cid = rollup_ids.setdefault(name, str(len(categories)))
            categories[cid] = name
            predicted = [[cid, conf], *predicted]
            report.rolled_up += 1
        det.classifications = _with_true_label(predicted, truth, index, label_pos)
    result.classification_categories = categories
    if options.subset.active:
        merged = {result.images[i].file for _, i, _ in matches}
        keep_images(result, options.subset, options.strip_prefix, merged)
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


def has_probabilities(outputs: pd.DataFrame, labels: Sequence[str]) -> bool:
    """Whether ``outputs`` has a probability column for every label (False: for none)."""
    present = [label for label in labels if label in outputs.columns]
    if present and len(present) < len(labels):
        missing = [label for label in labels if label not in outputs.columns]
        raise CamtrapError(
            f"classifier CSV lacks column(s) for label(s) {', '.join(missing[:5])} — wrong label index?"
        )
    for label in present if len(outputs) else ():  # no rows (nothing classified): no values
        if not pd.api.types.is_numeric_dtype(outputs[label]):
            bad = pd.to_numeric(outputs[label], errors="coerce").isna() & outputs[label].notna()
            example = outputs.loc[bad, label].iloc[0] if bad.any() else outputs[label].iloc[0]
            raise CamtrapError(
                f"column {label!r} of the classifier CSV holds {example!r}, not a probability "
                "— wrong label index?"
            )
    return bool(present) and bool(labels)


def nothing_merged(report: MergeReport, md: MDResults) -> EmptyResultError:
    """The error for a merge that matched no row, with the likely cause."""
    if not report.unmatched:
        return EmptyResultError(
            f"none of the {report.rows:,} rows names a crop (e.g. {report.unparsable[0]!r}); "
            "crops are named <image>___cropNN[_<detector>].jpg, as ct-crop writes them"
        )
    crop = report.unmatched[0]
    ref = parse_crop_name(crop)
    image = ref.file if ref is not None else crop
    files = [im.file for im in md.images]
    hint = "is this the MD JSON the crops were cut from?"
    for f in files:
        if image.endswith("/" + f):
            hint = f"crop paths carry a leading folder: pass --strip-prefix {image[: -len(f) - 1]}"
            break
    example = f"its images are like {files[0]!r}" if files else "it lists no image"
    return EmptyResultError(
        f"none of the {report.rows:,} crops names a detection of the MD JSON: crop {crop!r} is "
        f"of image {image!r}, {example} — {hint}"
    )


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
    """Predicted classes, sorted by confidence (or margin over the true label)."""
    values = p.copy()
    if options.relative_conf:
        if true_label is not None and len(split_labels(true_label)) > 1:
            raise CamtrapError(
                f"--relative-conf: crop has several true labels ({true_label!r}); margins over "
                "one true label are for single-label classifiers"
            )
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
    return [[str(j), round(float(values[j]), 4)] for j in order]


def _with_true_label(
    predicted: list[list[object]],
    true_label: str | None,
    index: Mapping[str, int],
    position: Literal["first", "last"] | str | None,
) -> list[list[object]]:
    """``predicted`` with the true label's ``label: <name>`` entry first or last (one entry
    per label of a multi-label crop, ``"deer,fox"``)."""
    if not position or true_label is None:
        return predicted
    entries: list[list[object]] = []
    for name in split_labels(true_label):
        if name not in index:
            raise CamtrapError(f"true label {name!r} is not among the classifier's labels")
        entries.append([str(len(index) + index[name]), 1.0])
    return [*entries, *predicted] if position == "first" else [*predicted, *entries]


def _stamp_info(result: MDResults, options: MergeOptions) -> None:
    info = result.info
    try:
        if float(info.format_version) < MIN_FORMAT_VERSION:
            info.format_version = "1.5"
    except ValueError:
        info.format_version = "1.5"
    info.classifier = options.classifier_name
    info.classification_completion_time = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    if options.typical_threshold is not None:
        meta = dict(info.extra.get("classifier_metadata") or {})
        meta["typical_classification_threshold"] = options.typical_threshold
        info.extra["classifier_metadata"] = meta


def read_classifier_csv(
    path: str, label_index: Sequence[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """A classifier CSV and its labels: ``label_index``, else the numeric columns that are
    not the project's metadata columns (path, label, weight, dataset, location, ...), else,
    for a CSV of true labels only (``classification_ds.csv``), the labels it names."""
    from ct_io.tables import read_csv

    frame = read_csv(path, required=["path"], dtype={"path": str, "label": str})
    if label_index:
        return frame, list(label_index)
    labels = [
        str(c)
        for c in frame.columns
        if c not in METADATA_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if labels:
        return frame, labels
    if "label" not in frame.columns:
        raise CamtrapError(
            f"{path}: no probability column and no 'label' column — give the classifier's "
            "output (path + one column per label) or a table of true labels"
        )
    return frame, sorted({x for v in frame["label"].dropna() for x in split_labels(v)})
