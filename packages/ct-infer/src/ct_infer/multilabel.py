"""Multi-label classification: several labels per crop (``label`` = ``"deer,fox"``).

A multi-label classifier has a sigmoid per label instead of one softmax, so each label's
probability stands on its own and a crop keeps every label above a threshold. Its metrics
are per label: average precision (the area under the precision-recall curve, mean over
labels = ``mAP``) and precision/recall at the threshold. Pure numpy/pandas, shared by
ct-train (training and its evaluation) and ``ct-infer evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ct_infer.metrics import EPS, SplitScores

#: Labels of one crop are written comma-separated (``classification_ds.csv``).
SEPARATOR = ","
#: Probability at which a label counts as predicted.
DEFAULT_THRESHOLD = 0.5


def split_labels(value: object) -> list[str]:
    """``"deer, fox"`` → ``["deer", "fox"]`` (empty parts dropped)."""
    return [part.strip() for part in str(value).split(SEPARATOR) if part.strip()]


def multi_hot(true_labels: Sequence[object], labels: Sequence[str]) -> np.ndarray:
    """(rows, labels) 0/1 matrix of each row's labels; a label the model lacks raises ValueError."""
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(true_labels), len(labels)), np.float32)
    missing: set[str] = set()
    for row, value in enumerate(true_labels):
        for part in split_labels(value):
            if part in index:
                out[row, index[part]] = 1.0
            else:
                missing.add(part)
    if missing:
        raise ValueError(
            f"true label(s) not among the model's labels: {', '.join(sorted(missing)[:5])}"
        )
    return out


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision-recall curve of one label (NaN without a positive): the
    mean of the precision at each positive, ranked by score (ties broken pessimistically)."""
    positives = float(truth.sum())
    if positives == 0:
        return float("nan")
    order = np.lexsort((truth, -scores))  # by score, negatives first among ties
    hits = truth[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / positives)


def bce_losses(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy, averaged over labels."""
    p = np.clip(probs, EPS, 1 - EPS)
    return -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean(axis=1)


def score_multilabel(
    probs: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    weights: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> SplitScores:
    """mAP, precision/recall at ``threshold`` (macro and micro), top-1-is-a-true-label
    accuracy, exact-set accuracy, BCE loss; per label a 2×2 ``[[tn, fp], [fn, tp]]`` and
    precision, recall, f1, support, ap."""
    probs = np.asarray(probs, np.float64)
    targets = np.asarray(targets, np.float64)
    n, k = probs.shape if probs.ndim == 2 else (0, len(labels))
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    predicted = probs >= threshold
    truth = targets > 0.5
    tp = (predicted & truth).sum(axis=0).astype(np.float64)
    fp = (predicted & ~truth).sum(axis=0).astype(np.float64)
    fn = (~predicted & truth).sum(axis=0).astype(np.float64)
    tn = n - tp - fp - fn
    support = truth.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    ap = np.array([average_precision(probs[:, j], truth[:, j]) for j in range(k)])
    present = support > 0
    losses = bce_losses(probs, targets) if n else np.zeros(0)
    top1 = truth[np.arange(n), probs.argmax(axis=1)] if n else np.zeros(0, bool)
    exact = (predicted == truth).all(axis=1) if n else np.zeros(0, bool)
    overall: dict[str, float] = {
        "count": float(n),
        "loss": float(losses.mean()) if n else float("nan"),
        "loss_weighted": float((w * losses).sum() / w.sum()) if n and w.sum() > 0 else float("nan"),
        "mAP": float(np.nanmean(ap)) if present.any() else float("nan"),
        "threshold": float(threshold),
        "macro_precision": float(precision[present].mean()) if present.any() else float("nan"),
        "macro_recall": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "micro_precision": float(tp.sum() / max(tp.sum() + fp.sum(), 1.0)),
        "micro_recall": float(tp.sum() / max(support.sum(), 1.0)),
        "acc_top1": float(top1.mean()) if n else float("nan"),
        "exact_match": float(exact.mean()) if n else float("nan"),
    }
    confusion = np.stack([np.stack([tn, fp], axis=-1), np.stack([fn, tp], axis=-1)], axis=1)
    stats = pd.DataFrame(
        {
            "label": list(labels),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(np.int64),
            "ap": ap,
        }
    )
    return SplitScores(overall, confusion.astype(np.int64), stats)


def labels_above(probs: np.ndarray, labels: Sequence[str], threshold: float) -> list[str]:
    """Per row, every label at or above ``threshold``, comma-joined, most probable first."""
    out = []
    for row in np.asarray(probs):
        keep = [j for j in np.argsort(-row, kind="stable") if row[j] >= threshold]
        out.append(SEPARATOR.join(labels[j] for j in keep))
    return out
