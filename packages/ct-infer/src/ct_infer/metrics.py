"""Classification metrics from an outputs table (one row per crop, one column per label).

Pure numpy/pandas, shared by ``ct-infer evaluate``, the report and ct-train.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from attrs import frozen

EPS = 1e-12
TOP_K = (1, 3)


@frozen
class SplitScores:
    """Everything ``evaluate`` writes for one split."""

    overall: dict[str, float]
    confusion: np.ndarray  # rows: true label, columns: predicted label
    label_stats: pd.DataFrame  # label, precision, recall, f1, support


def label_indices(true_labels: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Index of each true label in ``labels`` (a label the model lacks raises ValueError)."""
    index = {label: i for i, label in enumerate(labels)}
    missing = sorted({t for t in true_labels if t not in index})
    if missing:
        raise ValueError(f"true label(s) not among the model's labels: {', '.join(missing[:5])}")
    return np.fromiter((index[t] for t in true_labels), dtype=np.int64, count=len(true_labels))


def score(
    probs: np.ndarray, targets: np.ndarray, labels: Sequence[str], weights: np.ndarray | None = None
) -> SplitScores:
    """Loss, top-k accuracy (plain and weighted), macro recall, confusion matrix, per-label stats."""
    probs = np.asarray(probs, np.float64)
    n, k = probs.shape
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    p_true = probs[np.arange(n), targets] if n else np.zeros(0)
    loss = -np.log(np.clip(p_true, EPS, 1.0))
    order = np.argsort(-probs, axis=1, kind="stable")
    overall: dict[str, float] = {"count": float(n)}
    overall["loss"] = float(loss.mean()) if n else float("nan")
    overall["loss_weighted"] = (
        float((w * loss).sum() / w.sum()) if n and w.sum() > 0 else float("nan")
    )
    for top in TOP_K:
        hit = (order[:, : min(top, k)] == targets[:, None]).any(axis=1) if n else np.zeros(0, bool)
        overall[f"acc_top{top}"] = float(hit.mean()) if n else float("nan")
        overall[f"acc_weighted_top{top}"] = (
            float((w * hit).sum() / w.sum()) if n and w.sum() > 0 else float("nan")
        )
    predicted = order[:, 0] if n else np.zeros(0, np.int64)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (targets, predicted), 1)
    stats = per_label_stats(confusion, labels)
    present = stats["support"] > 0
    overall["macro_recall"] = (
        float(stats.loc[present, "recall"].mean()) if present.any() else float("nan")
    )
    overall["macro_f1"] = float(stats.loc[present, "f1"].mean()) if present.any() else float("nan")
    return SplitScores(overall, confusion, stats)


def per_label_stats(confusion: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per label from a confusion matrix (0 where undefined)."""
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame(
        {
            "label": list(labels),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(np.int64),
        }
    )


def top_confusions(confusion: np.ndarray, labels: Sequence[str], n: int = 10) -> pd.DataFrame:
    """The ``n`` largest off-diagonal cells: true, predicted, count, share of the true label."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    rows = []
    for idx in flat:
        i, j = np.unravel_index(idx, off.shape)
        if off[i, j] == 0:
            break
        rows.append(
            {
                "true": labels[i],
                "predicted": labels[j],
                "count": int(off[i, j]),
                "share": float(off[i, j] / max(confusion[i].sum(), 1)),
            }
        )
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])


def calibration_curve(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Reliability table: per confidence bin, mean confidence, accuracy and count."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            rows.append(
                {
                    "bin": b,
                    "confidence": float(confidence[sel].mean()),
                    "accuracy": float(correct[sel].mean()),
                    "count": int(sel.sum()),
                }
            )
    return pd.DataFrame(rows, columns=["bin", "confidence", "accuracy", "count"])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """ECE: count-weighted gap between confidence and accuracy over bins."""
    table = calibration_curve(confidence, correct, bins)
    if table.empty:
        return float("nan")
    return float(
        (table["count"] * (table["confidence"] - table["accuracy"]).abs()).sum()
        / table["count"].sum()
    )
