"""``ct-infer evaluate``: a model on the dataset splits → outputs and metrics files.

Writes, in the output folder (the formats of the seed's ``evaluate_model.py``):

- ``outputs_{split}.csv.gz``: ``path, label, weight`` + one probability column per label;
- ``overall_metrics.csv``: per split, loss, top-1/top-3 accuracy, their weighted
  variants, macro recall (MegaClassifier's "average top-1 recall") and macro F1;
- ``confusion_matrices.npz``: one matrix per split (rows true, columns predicted);
- ``label_stats.csv``: per split and label, precision, recall, F1, support.

``outputs_*`` are written in resumable chunks: an interrupted evaluation continues.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ct_infer.chunked import ChunkedCsv
from ct_infer.classify import RunSettings, predict_files, progress_bar
from ct_infer.mapping import aggregation_matrix
from ct_infer.metrics import SplitScores, label_indices, score
from ct_infer.multilabel import multi_hot, score_multilabel, split_labels
from ct_io.atomic import write_bytes_atomic
from ct_io.errors import CamtrapError
from ct_io.tables import read_classification_ds, read_csv, read_splits, write_csv

if TYPE_CHECKING:
    from ct_infer.predictor import Predictor

log = logging.getLogger(__name__)

WeightMode = Literal["auto", "none", "column", "label"]
ALL_SPLIT = "all"


def assign_splits(frame: pd.DataFrame, splits_json: str | os.PathLike[str] | None) -> pd.Series:
    """Split name of each row: a ``split`` column, else ``splits.json`` by (dataset, location)."""
    if "split" in frame.columns:
        return frame["split"].astype(str)
    if splits_json is None:
        return pd.Series(ALL_SPLIT, index=frame.index)
    split_of = read_splits(splits_json).split_of()
    keys = zip(frame["dataset"].astype(str), frame["location"].astype(str), strict=True)
    return pd.Series([split_of.get(k, "") for k in keys], index=frame.index)


def row_weights(frame: pd.DataFrame, mode: WeightMode) -> np.ndarray:
    """Sample weights: a ``weight`` column, inverse label frequency, or all ones."""
    if mode == "auto":
        mode = "column" if "weight" in frame.columns else "none"
    if mode == "none":
        return np.ones(len(frame))
    if mode == "column":
        if "weight" not in frame.columns:
            raise CamtrapError("--weights column: the dataset CSV has no 'weight' column")
        w = pd.to_numeric(frame["weight"], errors="coerce").to_numpy(np.float64)
        if np.isnan(w).any() or (w < 0).any():
            raise CamtrapError("the 'weight' column must hold non-negative numbers")
        return w
    counts = frame["label"].map(frame["label"].value_counts())
    return (len(frame) / (frame["label"].nunique() * counts)).to_numpy(np.float64)


def evaluate(
    predictor: Predictor,
    dataset_csv: str | os.PathLike[str],
    crops_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    settings: RunSettings,
    *,
    splits_json: str | os.PathLike[str] | None = None,
    split_names: Sequence[str] = ("train", "val", "test"),
    target_mapping: Mapping[str, Sequence[str]] | None = None,
    target_labels: Sequence[str] | None = None,
    weights: WeightMode = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, SplitScores]:
    """Evaluate on each split; writes the four kinds of output files and returns the scores."""
    frame = read_classification_ds(dataset_csv)
    multilabel = predictor.classifier.multilabel
    if multilabel and target_mapping is not None:
        raise CamtrapError(
            "--target-mapping sums softmax probabilities; a multi-label model's are independent"
        )
    if not multilabel:  # a single-label model is scored on each crop's first label
        frame["label"] = frame["label"].astype(str).str.split(",").str[0].str.strip()
    frame["split"] = assign_splits(frame, splits_json)
    frame["weight"] = row_weights(frame, weights)
    model_labels = predictor.classifier.labels
    if target_mapping is not None:
        labels = list(target_labels) if target_labels else sorted(target_mapping)
        matrix: np.ndarray | None = aggregation_matrix(model_labels, labels, target_mapping)
    else:
        labels, matrix = list(model_labels), None
    named = (
        {x for v in frame["label"] for x in split_labels(v)} if multilabel else set(frame["label"])
    )
    unknown = sorted(named - set(labels))
    if unknown:
        hint = (
            ""
            if target_mapping is not None
            else " — score it against other labels with --target-mapping"
        )
        raise CamtrapError(
            f"dataset label(s) the model cannot predict: {', '.join(unknown[:5])}{hint}"
        )
    out_dir = Path(output_dir)
    wanted = [ALL_SPLIT] if (frame["split"] == ALL_SPLIT).all() else list(split_names)
    results: dict[str, SplitScores] = {}
    for split in wanted:
        rows = frame[frame["split"] == split].drop_duplicates("path")
        if rows.empty:
            log.warning("split %r has no crops; skipped", split)
            continue
        outputs = _split_outputs(
            predictor,
            rows,
            Path(crops_dir),
            out_dir / f"outputs_{split}.csv.gz",
            labels,
            matrix,
            settings,
            overwrite,
            progress,
        )
        sample_weights = outputs["weight"].to_numpy(np.float64)
        if multilabel:  # every label above the threshold; mAP and per-label P/R
            truth = multi_hot(outputs["label"].tolist(), labels)
            results[split] = score_multilabel(
                outputs[labels].to_numpy(), truth, labels, sample_weights
            )
        else:
            targets = label_indices(outputs["label"].tolist(), labels)
            results[split] = score(outputs[labels].to_numpy(), targets, labels, sample_weights)
        log.info(
            "%s: %d crops, top-1 %.3f, macro recall %.3f",
            split,
            len(outputs),
            results[split].overall["acc_top1"],
            results[split].overall["macro_recall"],
        )
    if not results:
        raise CamtrapError(
            f"no crops in split(s) {', '.join(wanted)} — check splits.json and the dataset CSV"
        )
    write_scores(results, labels, out_dir)
    return results


def _split_outputs(
    predictor: Predictor,
    rows: pd.DataFrame,
    crops_dir: Path,
    output: Path,
    labels: list[str],
    matrix: np.ndarray | None,
    settings: RunSettings,
    overwrite: bool,
    progress: bool,
) -> pd.DataFrame:
    chunks = ChunkedCsv(output, ["path", "label", "weight", *labels], overwrite=overwrite)
    todo = rows[~rows["path"].isin(chunks.done)]
    info = rows.set_index("path")[["label", "weight"]]
    failed: dict[str, str] = {}
    with progress_bar(progress, len(todo)) as advance:
        for paths, probs, failures in predict_files(
            predictor, crops_dir, todo["path"].tolist(), settings
        ):
            failed.update(failures)
            if paths:
                p = probs @ matrix if matrix is not None else probs
                part = pd.DataFrame(p, columns=labels)
                part.insert(0, "weight", info.loc[paths, "weight"].to_numpy())
                part.insert(0, "label", info.loc[paths, "label"].to_numpy())
                part.insert(0, "path", paths)
                chunks.write(part)
            advance(len(paths) + len(failures))
    if failed:
        log.warning(
            "%d crop(s) could not be read and are left out, e.g. %s (%s)",
            len(failed),
            *next(iter(failed.items())),
        )
    result = chunks.finish()
    result["label"] = result["label"].astype(str)
    return result


def write_scores(results: Mapping[str, SplitScores], labels: Sequence[str], out_dir: Path) -> None:
    """``overall_metrics.csv``, ``confusion_matrices.npz`` and ``label_stats.csv``."""
    overall = pd.DataFrame([{"split": s, **r.overall} for s, r in results.items()])
    write_csv(overall, out_dir / "overall_metrics.csv")
    stats = pd.concat(
        [r.label_stats.assign(split=s) for s, r in results.items()], ignore_index=True
    )
    columns = ["split", "label", "precision", "recall", "f1", "support"]
    columns += ["ap"] if "ap" in stats.columns else []  # multi-label: average precision
    write_csv(stats[columns], out_dir / "label_stats.csv")
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {s: r.confusion for s, r in results.items()}
    arrays["labels"] = np.array(list(labels))
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(out_dir / "confusion_matrices.npz", buffer.getvalue())


def read_outputs(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, list[str]]:
    """An ``outputs_{split}.csv.gz`` table and its label columns."""
    frame = read_csv(path, required=["path", "label"], dtype={"path": str, "label": str})
    labels = [c for c in frame.columns if c not in ("path", "label", "weight")]
    return frame, labels
