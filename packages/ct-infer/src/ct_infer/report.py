"""``ct-infer report``: one HTML page from an evaluation folder, with the crops behind its numbers.

The header names the model (backbone, input size, labels, calibration), the data
(datasets, crops and camera locations per split) and the date. Then, per split: headline
metrics, the confusion matrix, a per-label precision/recall table, the top confusions
each with a strip of example crops, calibration curves per label, and for every label
its crops grouped by what the classifier predicted (the seed's
``analyze_classifier_results.ipynb`` as a command).

Charts are embedded as data URIs (and written beside the page as PNGs); crops are small
JPEG thumbnails in ``thumbs/`` beside the page, made once per crop and loaded lazily, so
a report of a hundred labels stays small and opens fast. Zip the folder to send it.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from attrs import frozen

from ct_infer.evaluate import read_outputs
from ct_infer.metrics import SplitScores, calibration_curve, label_indices, score, top_confusions
from ct_infer.multilabel import multi_hot, score_multilabel
from ct_infer.report_crops import confusion_strips, label_grids, with_predictions
from ct_infer.report_header import header_html, read_model, split_data
from ct_infer.thumbs import ThumbFolder
from ct_io.atomic import write_bytes_atomic, write_text_atomic
from ct_io.errors import CamtrapError

log = logging.getLogger(__name__)

MAX_CALIBRATION_PANELS = 24
#: Labels up to which every label's crop grid starts unfolded.
OPEN_GRIDS_UP_TO = 12


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


def _img(name: str, data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}" data-file="{html.escape(name)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    return frame.to_html(
        index=False, float_format=lambda v: floats.format(v), border=0, classes="t", escape=True
    )


#: Overview columns: metric key → heading.
OVERVIEW = {
    "count": "crops",
    "acc_top1": "top-1",
    "acc_top3": "top-3",
    "macro_recall": "macro recall",
    "macro_f1": "macro F1",
    "loss": "loss",
}


#: The overview of a multi-label evaluation (``ct_infer.multilabel``): its headline is mAP.
MULTILABEL_OVERVIEW = {
    "count": "crops",
    "mAP": "mAP",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
    "exact_match": "exact label set",
    "loss": "loss",
}


def overview_table(scores: dict[str, SplitScores], columns: dict[str, str] = OVERVIEW) -> str:
    """One row per split: crops as a whole number, rates to three decimals."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("split", *columns.values()))
    rows = []
    for split, s in scores.items():
        cells = [html.escape(split)]
        for key in columns:
            value = s.overall.get(key, float("nan"))
            cells.append(
                f"{int(value):,}" if key == "count" else "" if np.isnan(value) else f"{value:.3f}"
            )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='t'><tr>{head}</tr>{''.join(rows)}</table>"


def label_table(s: SplitScores, split: str) -> str:
    """Precision, recall, F1 per label; a label without crops in the split says so."""
    predicted = s.confusion.sum(axis=0)
    head = "".join(
        f"<th>{h}</th>" for h in ("label", "crops", "predicted", "precision", "recall", "F1")
    )
    rows = []
    for i, r in enumerate(s.label_stats.itertuples()):
        n_pred = int(predicted[i])
        precision = f"{r.precision:.3f}" if n_pred else "–"
        if int(r.support) == 0:
            cells = [
                html.escape(str(r.label)),
                "0",
                f"{n_pred:,}",
                precision,
                f"<i>no examples in {html.escape(split)}</i>",
                "–",
            ]
            rows.append("<tr class='none'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        cells = [
            html.escape(str(r.label)),
            f"{int(r.support):,}",
            f"{n_pred:,}",
            precision,
            f"{r.recall:.3f}",
            f"{r.f1:.3f}",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='t'><tr>{head}</tr>{''.join(rows)}</table>"


def confusions_table(confusions: pd.DataFrame) -> str:
    shown = confusions.assign(share=[f"{v:.0%}" for v in confusions["share"]])
    return shown.to_html(index=False, border=0, classes="t", escape=True)


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
table.t{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}table.t td,table.t th{padding:.2rem .6rem;text-align:right}
table.t td:first-child,table.t th:first-child{text-align:left}
table.t th{background:#f0f0f0}table.t tr:nth-child(even){background:#fafafa}table.t tr.none{color:#888}
table.kv{border-collapse:collapse;font-size:.95rem}table.kv th{text-align:left;padding:.15rem 1rem .15rem 0;color:#555;font-weight:normal}
figure{display:inline-block;margin:.5rem}img{max-width:100%;border:1px solid #ddd}.lead{color:#555}
nav a{margin-right:1rem}
.strip{display:flex;flex-wrap:wrap;gap:4px;align-items:flex-end;margin:.2rem 0 .8rem}
figure.c{margin:0;width:112px;text-align:center;font-size:.75rem;color:#444}
figure.c img{width:112px;height:112px;object-fit:contain;background:#111;border:0;display:block}
figure.missing{height:112px;background:#eee;display:flex;align-items:center;justify-content:center}
.more{color:#777;font-size:.85rem;align-self:center;padding:0 .5rem}
.conf p,.grp p{margin:.6rem 0 .2rem}.grp.correct p b{color:#1a7f37}.grp.wrong p b{color:#b42318}
details.lab{margin:.3rem 0 .6rem;border-left:3px solid #ddd;padding-left:.6rem}
details.lab summary{cursor:pointer;font-weight:600}
"""


@frozen
class ReportInputs:
    """The files a report reads beside the evaluation outputs (None: not shown)."""

    crops_dir: Path | None = None
    model: Path | None = None
    dataset_csv: Path | None = None


def find_inputs(eval_dir: Path) -> ReportInputs:
    """What a ct-train run folder (or the folder above ``eval_dir``) says: crops, bundle,
    dataset table."""
    from ct_infer.training_run import CT_TRAIN_CONFIG, read_training_run

    parent = eval_dir.resolve().parent
    if (parent / CT_TRAIN_CONFIG).is_file():
        run = read_training_run(parent)
        return ReportInputs(run.crops_dir, run.model, run.dataset_csv)
    table = parent / "classification_ds.csv"
    return ReportInputs(dataset_csv=table if table.is_file() else None)


def build_report(
    eval_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    crops_dir: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
    dataset_csv: str | os.PathLike[str] | None = None,
    grid_label: str | None = None,
    grid_split: str | Sequence[str] | None = None,
    per_class: int = 8,
    confusions: int = 10,
) -> Path:
    """Write ``report.html``, its chart PNGs and ``thumbs/`` into ``output_dir``; returns the page.

    ``crops_dir``: crops are shown (else a note says how to get them); ``model``: the bundle
    the header names; ``dataset_csv``: datasets and locations per split. Crop grids are
    made for every label and split, or only ``grid_label`` / ``grid_split``.
    """
    src, out = Path(eval_dir), Path(output_dir)
    outputs = sorted(src.glob("outputs_*.csv.gz"))
    if not outputs:
        raise CamtrapError(
            f"{src}: no outputs_<split>.csv.gz files — run `ct-infer evaluate` first"
        )
    frames: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    for path in outputs:
        frames[path.name[len("outputs_") : -len(".csv.gz")]] = read_outputs(path)
    grid_splits = _grid_splits(grid_split, list(frames))
    if grid_label is not None:
        known = frames[grid_splits[0]][1] if grid_splits else []
        if grid_label not in known:
            raise CamtrapError(
                f"--label {grid_label!r} is not a label of these outputs (e.g. {', '.join(known[:5])})"
            )
    thumbs = ThumbFolder(out / "thumbs", Path(crops_dir)) if crops_dir is not None else None
    scores: dict[str, SplitScores] = {}
    sections = []
    multilabel = is_multilabel(src)
    for split, (frame, labels) in frames.items():
        probs = frame[labels].to_numpy(np.float64)
        weights = frame["weight"].to_numpy(np.float64) if "weight" in frame.columns else None
        if multilabel:
            truth = multi_hot(frame["label"].tolist(), labels)
            scores[split] = s = score_multilabel(probs, truth, labels, weights)
            sections.append(_multilabel_section(split, s))
            continue
        targets = label_indices(frame["label"].tolist(), labels)
        scores[split] = s = score(probs, targets, labels, weights)
        sections.append(
            _split_section(
                split,
                frame,
                labels,
                probs,
                targets,
                s,
                out,
                thumbs,
                grids=split in grid_splits,
                grid_label=grid_label,
                per_class=per_class,
                confusions=confusions,
            )
        )
    model_path = Path(model) if model is not None else None
    header = header_html(
        source=src,
        model_path=model_path,
        meta=read_model(model_path),
        data=split_data({k: f for k, (f, _) in frames.items()}, dataset_csv),
    )
    nav = "".join(f"<a href='#split-{html.escape(s)}'>{html.escape(s)}</a>" for s in frames)
    crops_note = (
        ""
        if thumbs is not None
        else "<p class='lead'>Crops are not shown: give --crops-dir (a ct-train run folder names it).</p>"
    )
    parts = [
        "<h1>Classifier report</h1>",
        header,
        f"<nav>splits: {nav}</nav>",
        "<h2>Overview</h2>",
        overview_table(scores, MULTILABEL_OVERVIEW if multilabel else OVERVIEW),
        crops_note,
        *sections,
    ]
    if thumbs is not None:
        thumbs.remove_unused()
        if thumbs.failed:
            rel, why = next(iter(thumbs.failed.items()))
            log.warning("%d crop(s) could not be shown, e.g. %s (%s)", len(thumbs.failed), rel, why)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Classifier report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    target = out / "report.html"
    write_text_atomic(target, page)
    return target


def is_multilabel(eval_dir: Path) -> bool:
    """Whether ``ct-infer evaluate`` scored a multi-label model (its metrics have ``mAP``)."""
    overall = eval_dir / "overall_metrics.csv"
    return overall.is_file() and "mAP" in pd.read_csv(overall, nrows=0).columns


def _multilabel_section(split: str, s: SplitScores) -> str:
    """A multi-label split: precision, recall and average precision per label (no confusion
    matrix, calibration curves or crop grids: those assume one label per crop)."""
    stats = s.label_stats.rename(columns={"support": "crops", "ap": "AP", "f1": "F1"})
    return (
        f"<h2 id='split-{html.escape(split)}'>Split: {html.escape(split)}</h2>"
        "<p class='lead'>Multi-label: each label has its own probability and counts as "
        f"predicted at {s.overall['threshold']:.2f}.</p>"
        "<h3>Precision, recall and average precision per label</h3>" + _table(stats)
    )


def _grid_splits(wanted: str | Sequence[str] | None, have: list[str]) -> list[str]:
    if wanted is None:
        return have
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    missing = [n for n in names if n not in have]
    if missing:
        raise CamtrapError(f"no outputs for split {missing[0]!r}; have {', '.join(have)}")
    return names


def _split_section(
    split: str,
    frame: pd.DataFrame,
    labels: list[str],
    probs: np.ndarray,
    targets: np.ndarray,
    s: SplitScores,
    out: Path,
    thumbs: ThumbFolder | None,
    *,
    grids: bool,
    grid_label: str | None,
    per_class: int,
    confusions: int,
) -> str:
    cm = confusion_png(s.confusion, labels, f"confusion matrix — {split}")
    cal = calibration_png(probs, targets, labels, f"calibration per label — {split}")
    for name, data in ((f"confusion_{split}.png", cm), (f"calibration_{split}.png", cal)):
        write_bytes_atomic(out / name, data)
    top = top_confusions(s.confusion, labels, confusions)
    preds = with_predictions(frame, labels)
    body = [
        f"<h2 id='split-{html.escape(split)}'>Split: {html.escape(split)}</h2>",
        _img(
            f"confusion_{split}.png",
            cm,
            f"Confusion matrix ({split}); colour = share of the true label",
        ),
        "<h3>Precision and recall per label</h3>",
        label_table(s, split),
        "<h3>Top confusions</h3>",
    ]
    if thumbs is None:
        body.append(confusions_table(top))
    else:
        body.append(
            "<p class='lead'>Each mistake with its crops, the classifier's most confident first "
            "(the number under a crop: its confidence in the predicted label).</p>"
        )
        body.append(confusion_strips(preds, top, thumbs, per_class))
    body.append(
        _img(
            f"calibration_{split}.png",
            cal,
            f"Calibration curves ({split}): predicted probability vs observed frequency",
        )
    )
    if thumbs is not None and grids:
        body.append(f"<h3>Crops by label ({html.escape(split)}), grouped by prediction</h3>")
        body.append(
            label_grids(
                preds,
                labels,
                thumbs,
                per_class,
                split=split,
                only=grid_label,
                open_all=len(labels) <= OPEN_GRIDS_UP_TO,
            )
        )
    return "".join(body)
