"""What the review page shows: queues of crops, each crop with its label and prediction.

Three kinds of queue:

- mislabel candidates of a split: crops whose prediction beats their label by a margin
  (the rows of ``mislabeled_candidates_{split}.csv`` from ``ct-infer mislabeled`` when it
  is there, else found the same way with ``--margin``);
- one label's crops, grouped by prediction (mistakes first);
- low-confidence detections of a ``run`` / ``merge`` output: animal boxes whose best
  class stays below a threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from attrs import frozen

from ct_io.md import MDResults

log = logging.getLogger(__name__)

#: Prefixes of classification categories that are no label (merge's true label, rollups).
NOT_LABELS = ("label: ", "rollup: ")


@frozen
class Item:
    """One crop to decide on."""

    key: str  # crop path, or "<file>#<k>" for detection k of an image
    root: str  # id of the folder its picture is under
    path: str  # picture path relative to that folder
    predicted: str
    confidence: float
    label: str | None = None  # the training label (None: a new photo has none)
    bbox: tuple[float, float, float, float] | None = None  # box of a full image
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "root": self.root,
            "path": self.path,
            "bbox": list(self.bbox) if self.bbox else None,
            "label": self.label,
            "predicted": self.predicted,
            "confidence": round(float(self.confidence), 4),
            "note": self.note,
        }


@frozen
class Queue:
    """Items in the order they are reviewed, and the labels a reviewer may pick from."""

    id: str
    title: str
    kind: str  # "training" (crops with labels) or "detections" (new photos)
    items: tuple[Item, ...]
    labels: tuple[str, ...]
    source: str  # id of the source whose files its decisions go into


def predictions(outputs: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """``path, label, split`` plus ``predicted`` and ``confidence``."""
    probs = outputs[list(labels)].to_numpy(np.float64)
    best = probs.argmax(axis=1)
    out = outputs[["path", "label", "split"]].copy()
    out["predicted"] = np.asarray(labels, dtype=object)[best]
    out["confidence"] = probs[np.arange(len(outputs)), best]
    out["p_label"] = probs[np.arange(len(outputs)), [list(labels).index(x) for x in out["label"]]]
    return out.reset_index(drop=True)


def _note(row: pd.Series, places: Mapping[str, str]) -> str:
    return " · ".join(x for x in (str(row["split"]), places.get(str(row["path"]), "")) if x)


def _training_item(row: pd.Series, root: str, places: Mapping[str, str], note: str = "") -> Item:
    text = _note(row, places)
    return Item(
        key=str(row["path"]),
        root=root,
        path=str(row["path"]),
        predicted=str(row["predicted"]),
        confidence=float(row["confidence"]),
        label=str(row["label"]),
        note=f"{text} · {note}" if note else text,
    )


def candidate_queue(
    preds: pd.DataFrame,
    split: str,
    listed: Sequence[str] | None,
    margin: float,
    *,
    root: str,
    source: str,
    labels: Sequence[str],
    places: Mapping[str, str],
) -> Queue:
    """A split's mislabel candidates, largest margin first: ``listed`` paths (from
    ``mislabeled_candidates_{split}.csv``) or every crop whose margin reaches ``margin``."""
    rows = preds[preds["split"] == split]
    rows = rows.assign(margin=rows["confidence"] - rows["p_label"])
    if listed is not None:
        rows = rows[rows["path"].isin(set(listed))]
        title = f"mislabel candidates: {split} ({len(rows)} from mislabeled_candidates_{split}.csv)"
    else:
        rows = rows[(rows["predicted"] != rows["label"]) & (rows["margin"] >= margin)]
        title = f"mislabel candidates: {split} (margin ≥ {margin:g}, {len(rows)})"
    rows = rows.sort_values("margin", ascending=False, kind="stable")
    items = tuple(
        _training_item(r, root, places, f"margin {r['margin']:.2f}") for _, r in rows.iterrows()
    )
    return Queue(f"mislabeled-{split}", title, "training", items, tuple(labels), source)


def label_queue(
    preds: pd.DataFrame,
    label: str,
    *,
    root: str,
    source: str,
    labels: Sequence[str],
    places: Mapping[str, str],
) -> Queue:
    """Every crop labelled ``label`` (all splits), grouped by prediction: the largest group of
    mistakes first, the crops predicted right last; most confident first within a group."""
    rows = preds[preds["label"] == label]
    sizes = rows["predicted"].value_counts()
    rank = {p: (p == label, -int(n), str(p)) for p, n in sizes.items()}
    order = sorted(rank, key=lambda p: rank[p])
    parts = [
        rows[rows["predicted"] == p].sort_values("confidence", ascending=False, kind="stable")
        for p in order
    ]
    rows = pd.concat(parts) if parts else rows
    wrong = int((rows["predicted"] != label).sum())
    items = tuple(_training_item(r, root, places) for _, r in rows.iterrows())
    title = f"label {label}: {len(rows)} crops by prediction ({wrong} predicted otherwise)"
    return Queue(f"label-{label}", title, "training", items, tuple(labels), source)


def detection_labels(md: MDResults) -> list[str]:
    """The classifier's labels in an MD JSON (its classification categories, without the
    true-label and rollup entries merge adds)."""
    names = (md.classification_categories or {}).values()
    return [n for n in names if not n.startswith(NOT_LABELS)]


def low_confidence_queue(
    md: MDResults,
    *,
    below: float,
    detection_threshold: float,
    categories: Sequence[str],
    root: str,
    source: str,
    name: str,
) -> Queue:
    """Detections of the wanted categories (conf ≥ ``detection_threshold``) whose best
    class has a confidence below ``below``, least confident first."""
    wanted = {k for k, v in md.detection_categories.items() if v in set(categories)}
    names = md.classification_categories or {}
    found = []
    for im, k, det in md.iter_detections():
        if det.category not in wanted or det.conf < detection_threshold:
            continue
        if not det.classifications or det.bbox is None:
            continue
        top = max(det.classifications, key=lambda c: float(c[1]))
        if float(top[1]) >= below:
            continue
        found.append(
            Item(
                key=f"{im.file}#{k}",
                root=root,
                path=im.file,
                predicted=names.get(str(top[0]), str(top[0])),
                confidence=float(top[1]),
                bbox=(
                    float(det.bbox[0]),
                    float(det.bbox[1]),
                    float(det.bbox[2]),
                    float(det.bbox[3]),
                ),
                note=f"{im.file} · box {k} ({det.conf:.2f})",
            )
        )
    found.sort(key=lambda it: (it.confidence, it.key))
    title = f"low confidence: {name} (best class < {below:g}, {len(found)})"
    return Queue(
        f"lowconf-{Path(name).stem}",
        title,
        "detections",
        tuple(found),
        tuple(detection_labels(md)),
        source,
    )
