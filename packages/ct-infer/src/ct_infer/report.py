"""``ct-infer report``: one self-contained HTML page (plus its PNGs) from an evaluation folder.

Shows, per split: headline metrics, the confusion matrix, a per-label precision/recall
table, calibration curves per label, the top confusions; and for a chosen label, crops
of that label grouped by what the classifier predicted (the seed's
``analyze_classifier_results.ipynb`` as a command). Images are embedded as data URIs,
so the HTML file can be mailed on its own; the PNGs are written beside it too.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_infer.evaluate import read_outputs
from ct_infer.metrics import calibration_curve, label_indices, score, top_confusions
from ct_infer.multilabel import split_labels
from ct_io.atomic import write_bytes_atomic, write_text_atomic
from ct_io.errors import CamtrapError
from ct_io.paths import safe_join

log = logging.getLogger(__name__)

MAX_CALIBRATION_PANELS = 24
THUMB = 128


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def confusion_png(confusion: np.ndarray, labels: Sequence[str], title: str) -> bytes:
    """Row-normalized confusion matrix (recall on the diagonal), counts written in cells."""
    n = len(labels)
    size = min(4 + 0.35 * n, 18)
    fig = _figure(size, size)
    ax = fig.add_subplot()
    rows = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape, float), where=rows > 0)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    ax.text(
                        j,
                        i,
                        str(confusion[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    return _png(fig)


def calibration_png(
    probs: np.ndarray, targets: np.ndarray, labels: Sequence[str], title: str
) -> bytes:
    """One reliability diagram per label (one-vs-rest): predicted probability vs frequency."""
    shown = list(range(min(len(labels), MAX_CALIBRATION_PANELS)))
    cols = min(4, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig = _figure(3 * cols, 2.8 * rows)
    fig.suptitle(title)
    for n, j in enumerate(shown):
        ax = fig.add_subplot(rows, cols, n + 1)
        table = calibration_curve(probs[:, j], (targets == j).astype(float), bins=10)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        if not table.empty:
            ax.plot(table["confidence"], table["accuracy"], marker="o", ms=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(labels[j], fontsize=9)
        ax.tick_params(labelsize=7)
    return _png(fig)


def grid_png(crops_dir: Path, paths: Sequence[str], columns: int = 8) -> bytes | None:
    """A contact sheet of crops (square thumbnails); unreadable crops are skipped."""
    from PIL import Image

    thumbs = []
    for rel in paths:
        try:
            with Image.open(safe_join(crops_dir, rel)) as im:
                im.draft("RGB", (THUMB, THUMB))
                thumbs.append(im.convert("RGB").resize((THUMB, THUMB)))
        except Exception as exc:  # a missing crop should not stop the report
            log.debug("skipping %s in the image grid: %s", rel, exc)
    if not thumbs:
        return None
    cols = min(columns, len(thumbs))
    rows = (len(thumbs) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * THUMB, rows * THUMB), (255, 255, 255))
    for i, t in enumerate(thumbs):
        sheet.paste(t, ((i % cols) * THUMB, (i // cols) * THUMB))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def _img(name: str, data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}" data-file="{html.escape(name)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    return frame.to_html(
        index=False, float_format=lambda v: floats.format(v), border=0, classes="t", escape=True
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
table.t{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}table.t td,table.t th{padding:.2rem .6rem;text-align:right}
table.t th{background:#f0f0f0}table.t tr:nth-child(even){background:#fafafa}figure{display:inline-block;margin:.5rem}
img{max-width:100%;border:1px solid #ddd}.lead{color:#555}
"""


def build_report(
    eval_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    crops_dir: str | os.PathLike[str] | None = None,
    grid_label: str | None = None,
    grid_split: str | None = None,
    per_class: int = 16,
) -> Path:
    """Write ``report.html`` and its PNGs into ``output_dir``; returns the HTML path."""
    src, out = Path(eval_dir), Path(output_dir)
    outputs = sorted(src.glob("outputs_*.csv.gz"))
    if not outputs:
        raise CamtrapError(
            f"{src}: no outputs_<split>.csv.gz files — run `ct-infer evaluate` first"
        )
    parts = [f"<h1>Classifier report</h1><p class='lead'>from {html.escape(str(src))}</p>"]
    split_frames: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    summary: list[dict[str, Any]] = []
    multilabel = _is_multilabel(src)
    for path in outputs:
        split = path.name[len("outputs_") : -len(".csv.gz")]
        frame, labels = read_outputs(path)
        split_frames[split] = (frame, labels)
        probs = frame[labels].to_numpy(np.float64)
        if multilabel:
            parts.append(_multilabel_split(split, frame, labels, probs, summary))
            continue
        targets = label_indices(frame["label"].tolist(), labels)
        weights = frame["weight"].to_numpy(np.float64) if "weight" in frame.columns else None
        s = score(probs, targets, labels, weights)
        summary.append({"split": split, **{k: v for k, v in s.overall.items()}})
        body = [f"<h2>Split: {html.escape(split)}</h2>"]
        cm = confusion_png(s.confusion, labels, f"confusion matrix — {split}")
        cal = calibration_png(probs, targets, labels, f"calibration per label — {split}")
        for name, data in ((f"confusion_{split}.png", cm), (f"calibration_{split}.png", cal)):
            write_bytes_atomic(out / name, data)
        body.append(
            _img(
                f"confusion_{split}.png",
                cm,
                f"Confusion matrix ({split}); colour = share of the true label",
            )
        )
        body.append("<h3>Precision and recall per label</h3>" + _table(s.label_stats))
        body.append("<h3>Top confusions</h3>" + _table(top_confusions(s.confusion, labels, 10)))
        body.append(
            _img(
                f"calibration_{split}.png",
                cal,
                f"Calibration curves ({split}): predicted probability vs observed frequency",
            )
        )
        parts.extend(body)
    parts.insert(1, "<h2>Overview</h2>" + _table(pd.DataFrame(summary)))
    if grid_label is not None:
        if crops_dir is None:
            raise CamtrapError("--label needs --crops-dir to show crops")
        parts.append(
            _grid_section(Path(crops_dir), split_frames, grid_label, grid_split, per_class, out)
        )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>Classifier report</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    target = out / "report.html"
    write_text_atomic(target, page)
    return target


def _is_multilabel(eval_dir: Path) -> bool:
    """Whether ``ct-infer evaluate`` scored a multi-label model (its metrics have ``mAP``)."""
    overall = eval_dir / "overall_metrics.csv"
    if overall.is_file():
        return "mAP" in pd.read_csv(overall, nrows=0).columns
    return False


def _multilabel_split(
    split: str,
    frame: pd.DataFrame,
    labels: list[str],
    probs: np.ndarray,
    summary: list[dict[str, Any]],
) -> str:
    """A multi-label split: mAP and precision/recall/AP per label (no confusion matrix)."""
    from ct_infer.multilabel import multi_hot, score_multilabel

    weights = frame["weight"].to_numpy(np.float64) if "weight" in frame.columns else None
    s = score_multilabel(probs, multi_hot(frame["label"].tolist(), labels), labels, weights)
    summary.append({"split": split, **s.overall})
    return (
        f"<h2>Split: {html.escape(split)}</h2>"
        "<p>Multi-label: each label's own probability, counted as predicted at "
        f"{s.overall['threshold']:.2f}.</p>"
        "<h3>Precision, recall and average precision per label</h3>" + _table(s.label_stats)
    )


def _grid_section(
    crops_dir: Path,
    split_frames: dict[str, tuple[pd.DataFrame, list[str]]],
    label: str,
    split: str | None,
    per_class: int,
    out: Path,
) -> str:
    chosen = split or ("test" if "test" in split_frames else next(iter(split_frames)))
    if chosen not in split_frames:
        raise CamtrapError(f"no outputs for split {chosen!r}; have {', '.join(split_frames)}")
    frame, labels = split_frames[chosen]
    if label not in labels:
        raise CamtrapError(
            f"--label {label!r} is not a label of these outputs (e.g. {', '.join(labels[:5])})"
        )
    rows = frame[frame["label"].map(lambda v: label in split_labels(v))]
    predicted = (
        np.array(labels)[rows[labels].to_numpy().argmax(axis=1)] if len(rows) else np.array([])
    )
    section = [f"<h2>Crops labelled {html.escape(label)} ({chosen}), by prediction</h2>"]
    for pred, group in rows.assign(predicted=predicted).groupby("predicted", sort=False):
        group = group.sort_values(str(pred), ascending=False)
        data = grid_png(crops_dir, group["path"].head(per_class).tolist())
        title = f"predicted {pred}: {len(group)} crop(s)"
        if data is None:
            section.append(f"<p>{html.escape(title)} (crops not found)</p>")
            continue
        name = f"grid_{_slug(label)}_as_{_slug(str(pred))}.png"
        write_bytes_atomic(out / name, data)
        section.append(_img(name, data, title))
    if len(section) == 1:
        section.append("<p>No crops with this label in this split.</p>")
    return "".join(section)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:60]
