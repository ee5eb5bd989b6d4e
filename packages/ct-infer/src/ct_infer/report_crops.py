"""The crops behind a report's numbers: strips of examples for each top confusion, and
per label a grid of its crops grouped by what the classifier predicted.

Crops are shown as thumbnails (:class:`ct_infer.thumbs.ThumbFolder`), each captioned with
the classifier's confidence in what it predicted; the most confident come first.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ct_infer.thumbs import ThumbFolder

#: Predicted classes shown per label (the correct one, then the most common mistakes).
MAX_GROUPS = 6


def with_predictions(frame: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """``path, label`` plus ``predicted`` and its ``confidence``, one row per crop."""
    probs = frame[list(labels)].to_numpy(np.float64)
    best = probs.argmax(axis=1) if len(frame) else np.zeros(0, np.int64)
    return pd.DataFrame(
        {
            "path": frame["path"].astype(str).to_numpy(),
            "label": frame["label"].astype(str).to_numpy(),
            "predicted": np.asarray(labels, dtype=object)[best] if len(frame) else [],
            "confidence": probs[np.arange(len(frame)), best] if len(frame) else [],
        }
    )


def strip(rows: pd.DataFrame, thumbs: ThumbFolder, limit: int, *, show_label: bool) -> str:
    """Up to ``limit`` crops, most confident first: thumbnail, confidence (and labels)."""
    figures = []
    for row in (
        rows.sort_values("confidence", ascending=False, kind="stable").head(limit).itertuples()
    ):
        src = thumbs.get(str(row.path))
        caption = f"{row.confidence:.2f}"
        if show_label:
            caption = f"{row.label} → {row.predicted} {caption}"
        title = html.escape(f"{row.path}: {row.label} → {row.predicted} ({row.confidence:.3f})")
        if src is None:
            figures.append(f"<figure class='c missing' title='{title}'>crop missing</figure>")
            continue
        figures.append(
            f"<figure class='c'><img src='{html.escape(src)}' loading='lazy' alt='{title}' "
            f"title='{title}'><figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    more = len(rows) - min(limit, len(rows))
    tail = f"<span class='more'>+{more} more</span>" if more > 0 else ""
    return f"<div class='strip'>{''.join(figures)}{tail}</div>"


def confusion_strips(
    preds: pd.DataFrame, confusions: pd.DataFrame, thumbs: ThumbFolder, per_strip: int
) -> str:
    """One block per top confusion: "true → predicted", its count, and example crops."""
    if confusions.empty:
        return "<p>No confusions: every crop of this split is predicted as its label.</p>"
    blocks = []
    for c in confusions.itertuples():
        rows = preds[(preds["label"] == c.true) & (preds["predicted"] == c.predicted)]
        head = (
            f"<b>{html.escape(str(c.true))}</b> → <b>{html.escape(str(c.predicted))}</b>: "
            f"{int(c.count):,} crop(s), {float(c.share):.0%} of {html.escape(str(c.true))}"
        )
        blocks.append(
            f"<div class='conf'><p>{head}</p>{strip(rows, thumbs, per_strip, show_label=False)}</div>"
        )
    return "".join(blocks)


def label_grids(
    preds: pd.DataFrame,
    labels: Sequence[str],
    thumbs: ThumbFolder,
    per_class: int,
    *,
    split: str,
    only: str | None = None,
    open_all: bool = True,
) -> str:
    """Per label (or just ``only``), its crops grouped by prediction, the correct group first."""
    sections = []
    for label in [only] if only is not None else labels:
        rows = preds[preds["label"] == label]
        name = html.escape(label)
        if rows.empty:
            sections.append(
                f"<details class='lab'><summary>{name}: no examples in {html.escape(split)}"
                "</summary></details>"
            )
            continue
        counts = rows["predicted"].value_counts()
        right = int(counts.get(label, 0))
        order = [label] if right else []
        order += [p for p in counts.index if p != label]
        parts = []
        for pred in order[:MAX_GROUPS]:
            group = rows[rows["predicted"] == pred]
            mark = "correct" if pred == label else "wrong"
            parts.append(
                f"<div class='grp {mark}'><p>predicted <b>{html.escape(str(pred))}</b>: "
                f"{len(group):,}</p>{strip(group, thumbs, per_class, show_label=False)}</div>"
            )
        left = order[MAX_GROUPS:]
        if left:
            n = int(counts[left].sum())
            parts.append(
                f"<p class='more'>and {n:,} crop(s) predicted as {html.escape(', '.join(left))}</p>"
            )
        summary = (
            f"{name}: {len(rows):,} crop(s), {right:,} predicted right ({right / len(rows):.0%})"
        )
        sections.append(
            f"<details class='lab'{' open' if open_all else ''}><summary>{summary}</summary>"
            f"{''.join(parts)}</details>"
        )
    return "".join(sections)
