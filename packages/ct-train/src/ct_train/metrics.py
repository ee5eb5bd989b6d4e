"""Classification metrics from predicted probabilities (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``C[i, j]``: examples of true label i predicted as j."""
    return np.bincount(targets * num_classes + preds, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def topk_correct(probs: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per example: whether the true label is among the ``k`` most probable."""
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return (top == targets[:, None]).any(axis=1)


def summarize(
    probs: np.ndarray,
    targets: np.ndarray,
    losses: np.ndarray,
    weights: np.ndarray,
    labels: Sequence[str],
) -> tuple[dict[str, float], np.ndarray]:
    """Loss, top-1/top-3 accuracy (plain and weighted), macro recall, per-label recall; and the confusion matrix.

    ``recall_macro`` is the mean over labels present in ``targets`` — MegaClassifier's
    headline "average top-1 recall".
    """
    c = len(labels)
    if len(targets) == 0:
        return {}, np.zeros((c, c), dtype=np.int64)
    preds = probs.argmax(axis=1)
    cm = confusion_matrix(targets, preds, c)
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.divide(np.diag(cm), support, out=np.zeros(c), where=present)
    top1, top3 = topk_correct(probs, targets, 1), topk_correct(probs, targets, 3)
    wsum = float(weights.sum()) or 1.0
    metrics = {
        "loss": float(losses.mean()),
        "acc_top1": float(top1.mean()),
        "acc_top3": float(top3.mean()),
        "loss_weighted": float((losses * weights).sum() / wsum),
        "acc_weighted_top1": float((top1 * weights).sum() / wsum),
        "acc_weighted_top3": float((top3 * weights).sum() / wsum),
        "recall_macro": float(recall[present].mean()),
        "count": float(len(targets)),
    }
    for i, label in enumerate(labels):
        if present[i]:
            metrics[f"label_recall/{label}"] = float(recall[i])
    return metrics, cm


def extreme_examples(
    probs: np.ndarray, targets: np.ndarray, k: int
) -> dict[str, dict[int, list[int]]]:
    """Per label, the ``k`` most telling rows: ``tp`` (surest right), ``fp`` (surest wrong
    claims of the label), ``fn`` (examples of the label it was least sure of)."""
    preds = probs.argmax(axis=1)
    out: dict[str, dict[int, list[int]]] = {"tp": {}, "fp": {}, "fn": {}}
    for label in range(probs.shape[1]):
        conf = probs[:, label]
        groups = {
            "tp": (np.flatnonzero((targets == label) & (preds == label)), -1),
            "fp": (np.flatnonzero((targets != label) & (preds == label)), -1),
            "fn": (np.flatnonzero((targets == label) & (preds != label)), 1),
        }
        for kind, (rows, sign) in groups.items():
            if len(rows):
                out[kind][label] = rows[np.argsort(sign * conf[rows], kind="stable")[:k]].tolist()
    return out


def summarize_multilabel(
    probs: np.ndarray,
    targets: np.ndarray,
    losses: np.ndarray,
    weights: np.ndarray,
    labels: Sequence[str],
    threshold: float = 0.5,
) -> tuple[dict[str, float], np.ndarray]:
    """Multi-label: loss, mAP, top-1-is-a-true-label accuracy, exact-set accuracy, macro
    precision/recall at ``threshold`` and per label recall, precision and AP; the per-label
    2×2 matrices ``[[tn, fp], [fn, tp]]``.

    ``recall_macro`` (the default early-stop metric) is the mean recall over labels present."""
    from ct_infer.multilabel import score_multilabel

    c = len(labels)
    if len(targets) == 0:
        return {}, np.zeros((c, 2, 2), dtype=np.int64)
    scores = score_multilabel(probs, targets, labels, weights, threshold)
    o = scores.overall
    wsum = float(weights.sum()) or 1.0
    metrics = {
        "loss": float(losses.mean()),
        "loss_weighted": float((losses * weights).sum() / wsum),
        "mAP": o["mAP"],
        "acc_top1": o["acc_top1"],
        "exact_match": o["exact_match"],
        "recall_macro": o["macro_recall"],
        "precision_macro": o["macro_precision"],
        "count": float(len(targets)),
    }
    for row in scores.label_stats.itertuples(index=False):
        if row.support:
            metrics[f"label_recall/{row.label}"] = float(row.recall)
            metrics[f"label_precision/{row.label}"] = float(row.precision)
            metrics[f"label_ap/{row.label}"] = float(row.ap)
    return metrics, scores.confusion
