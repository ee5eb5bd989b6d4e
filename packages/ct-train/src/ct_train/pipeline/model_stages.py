"""Stages from the split table to a shipped model: train, bundle, evaluate, export, report."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ct_io.errors import CamtrapError
from ct_io.jsonio import read_json
from ct_train.pipeline.lineages import run_label_taxonomy
from ct_train.pipeline.stages import Context, Outcome, Stage, fetched_record, sections

if TYPE_CHECKING:
    from ct_infer.calibration import TemperatureFit

log = logging.getLogger(__name__)

#: The training sections: a change to any of them retrains.
TRAIN_SECTIONS = ("data", "sampling", "model", "loss", "optim", "train", "loggers", "preset")
#: Paths in ``data`` the train stage does not depend on (they move with the run folder).
_DATA_PATHS = ("dir", "crops_dir", "sources_dir")


def _train_section(cfg: Any) -> Any:
    picked = sections(*TRAIN_SECTIONS)(cfg)
    picked["data"] = {k: v for k, v in picked["data"].items() if k not in _DATA_PATHS}
    return picked


# ---------------------------------------------------------------- train


def train(ctx: Context) -> Outcome:
    """The training engine; an interrupted run continues from ``checkpoints/last.pt``."""
    from ct_train.engine import fit

    result = fit(ctx.cfg, resume=ctx.resume, pm=ctx.pm)
    counts: dict[str, Any] = {"best epoch": result["best_epoch"]}
    for name, metrics in result["splits"].items():
        if name != "train":
            counts[f"{name} top-1"] = round(float(metrics.get("acc_top1", 0.0)), 3)
    return Outcome(counts)


def _train_inputs(ctx: Context) -> list[Path]:
    p = ctx.paths
    files = [p.dataset_csv, p.label_index, p.splits]
    # the crops' pixels: the manifest, and the settings they were made with
    files += [f for f in (p.crops_manifest, p.crops_dir / "crop_settings.json") if f.is_file()]
    return files


# ---------------------------------------------------------------- bundle


def bundle(ctx: Context) -> Outcome:
    """The best checkpoint as a ct-infer bundle (weights + labels + preprocessing)."""
    from ct_infer.backbones import Preprocessing
    from ct_infer.bundle import make_meta, save_tensors
    from ct_train import checkpoint

    best = checkpoint.load(ctx.paths.best_checkpoint)
    meta = best.get("meta", {})
    cfg = ctx.cfg
    missing = [k for k in ("labels", "backbone", "input_size", "mean", "std") if k not in meta]
    if missing:
        raise CamtrapError(
            f"{ctx.paths.best_checkpoint}: no {', '.join(missing)} in the checkpoint metadata"
        )
    final = read_json(ctx.paths.final_metrics) if ctx.paths.final_metrics.is_file() else {}
    labels = list(meta["labels"])
    multilabel = bool(meta.get("multilabel", False))
    fit, why_uncalibrated = fit_calibration(ctx, labels, multilabel=multilabel)
    taxonomy = run_label_taxonomy(ctx, labels)
    extra: dict[str, Any] = {
        "best_epoch": meta.get("epoch"),
        "early_stop_metric": meta.get("metric"),
        "early_stop_value": meta.get("value"),
        "final_metrics": final.get("splits", {}),
    }
    if fit is not None:
        # what the NLL and ECE are over: crops (softmax) or (crop, label) cells (sigmoid)
        method = "sigmoid, one T for all labels" if multilabel else "softmax"
        extra["calibration"] = {"split": "val", "method": method, **attrs.asdict(fit)}
    bundle_meta = make_meta(
        meta["backbone"],
        meta["labels"],
        # the engine's eval transform: short side to size (bicubic), centre crop
        Preprocessing(
            int(meta["input_size"]),
            _rgb(meta["mean"]),
            _rgb(meta["std"]),
            resize="center-crop",
            interpolation="bicubic",
        ),
        meta.get("backbone_options", {}),
        crop={
            "square": cfg.crop.strategy in ("square", "pad", "center"),
            "strategy": cfg.crop.strategy,
            "margin": cfg.crop.margin,
        },
        config_digest=meta.get("config_digest"),
        name=ctx.bundle_path().stem,
        taxonomy=taxonomy,
        temperature=fit.temperature if fit is not None else 1.0,
        multilabel=multilabel,
        extra=extra,
    )
    tensors = {k: v.detach().cpu().contiguous() for k, v in best["model"].items()}
    path = save_tensors(ctx.bundle_path(), tensors, bundle_meta)
    counts: dict[str, Any] = {"labels": len(labels), "MB": round(path.stat().st_size / 2**20, 1)}
    if taxonomy:
        counts["with taxonomy"] = len(taxonomy)
    if fit is not None:
        counts["temperature"] = round(fit.temperature, 3)
        counts["val ECE"] = f"{fit.ece_before:.3f} → {fit.ece_after:.3f}"
        counts["val NLL"] = f"{fit.nll_before:.3f} → {fit.nll_after:.3f}"
    return Outcome(counts, note=why_uncalibrated)


def fit_calibration(
    ctx: Context, labels: list[str], *, multilabel: bool = False
) -> tuple[TemperatureFit | None, str]:
    """Temperature scaling fitted on the best weights' val outputs, or None and why not.

    Softmax: the NLL of the true label. Multi-label: one temperature for every label's
    sigmoid, minimising the binary NLL over all (crop, label) cells.

    A val split the model gets entirely right (every crop's top label; multi-label, every
    cell on the right side of 0.5) cannot be calibrated on: the likelihood keeps rising
    as the temperature falls, and the fit would make the model as over-confident as the
    search range allows. Such a bundle, or one whose fit ran to the search bound, stays
    at temperature 1.
    """
    import numpy as np

    from ct_infer.calibration import (
        T_RANGE,
        fit_sigmoid_temperature,
        fit_temperature,
        sigmoid_mistakes,
    )

    path = ctx.paths.val_outputs
    if not ctx.cfg.export.calibrate:
        return None, ""
    if not path.is_file():
        return None, "no val split: not calibrated"
    with np.load(path) as npz:
        probs, targets = npz["probs"], npz["targets"]
    target_shape = probs.shape if multilabel else (len(probs),)
    if probs.ndim != 2 or probs.shape[1] != len(labels) or targets.shape != target_shape:
        raise CamtrapError(
            f"{path}: {probs.shape} probabilities and {targets.shape} targets do not fit "
            f"{len(labels)} {'multi-label ' if multilabel else ''}labels — rerun the train stage (--force train)"
        )
    if not len(targets):
        return None, "empty val split: not calibrated"
    perfect = (
        sigmoid_mistakes(probs, targets) == 0
        if multilabel
        else bool((probs.argmax(1) == targets).all())
    )
    if perfect:
        return (
            None,
            f"val ({len(targets)} crops) has no mistake to calibrate on: temperature left at 1",
        )
    fit = fit_sigmoid_temperature(probs, targets) if multilabel else fit_temperature(probs, targets)
    if not T_RANGE[0] * 1.01 < fit.temperature < T_RANGE[1] * 0.99:
        return None, f"temperature fit ran to its bound ({fit.temperature:.3g}): left at 1"
    return fit, ""


def _bundle_inputs(ctx: Context) -> list[Path]:
    p, lab = ctx.paths, ctx.cfg.labels
    files = [p.best_checkpoint, p.final_metrics]
    files += [f for f in (p.val_outputs, p.data_json) if f.is_file()]
    files += [f for f in (lab.spec, lab.taxonomy) if f is not None]
    brought = (fetched_record(ctx) or {}).get("taxonomy")  # the taxonomy the sources brought
    files += [Path(brought)] if brought and Path(brought).is_file() else []
    return files


def _rgb(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


# ---------------------------------------------------------------- evaluate


def evaluate(ctx: Context) -> Outcome:
    """The bundle on every split with ct-infer → ``evaluation/``."""
    from ct_infer.classify import RunSettings
    from ct_infer.evaluate import evaluate as infer_evaluate
    from ct_infer.predictor import Predictor, load_classifier
    from ct_train.session import amp_precision

    cfg, paths = ctx.cfg, ctx.paths
    settings = RunSettings(
        batch_size=cfg.evaluate.batch_size,
        device=cfg.train.device,
        precision=amp_precision(cfg.train.amp),
    )
    if cfg.data.num_workers is not None:
        settings.workers = cfg.data.num_workers
    predictor = Predictor(
        load_classifier(ctx.bundle_path()), device=settings.device, precision=settings.precision
    )
    results = infer_evaluate(
        predictor,
        paths.dataset_csv,
        paths.crops_dir,
        paths.eval_dir,
        settings,
        splits_json=paths.splits,
        split_names=cfg.evaluate.splits,
        overwrite=not ctx.resume,
        progress=False,
    )
    counts: dict[str, Any] = {}
    for name, scores in results.items():
        counts[f"{name} top-1"] = round(float(scores.overall["acc_top1"]), 3)
    if "test" in results:
        counts["test macro recall"] = round(float(results["test"].overall["macro_recall"]), 3)
    return Outcome(counts)


def eval_outputs(ctx: Context) -> list[Path]:
    """The evaluate stage's files (what the report stage reads)."""
    d = ctx.paths.eval_dir
    names = ["overall_metrics.csv", "label_stats.csv", "confusion_matrices.npz"]
    return [d / n for n in names] + sorted(d.glob("outputs_*.csv.gz"))


# ---------------------------------------------------------------- export


def export(ctx: Context) -> Outcome:
    """TorchScript and/or ONNX files next to the bundle, checked against it."""
    from ct_infer.bundle import load_bundle
    from ct_infer.export import export_bundle, max_abs_difference

    b = load_bundle(ctx.bundle_path())
    counts: dict[str, Any] = {}
    for fmt in ctx.cfg.export.formats:
        out = export_path(ctx, fmt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save's deprecation note
            export_bundle(b, out, fmt)
        counts[f"{fmt} max |Δ|"] = f"{max_abs_difference(b, out):.1e}"
    return Outcome(counts)


def export_path(ctx: Context, fmt: str) -> Path:
    """Where the ``torchscript`` or ``onnx`` export goes, next to the bundle."""
    suffix = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}[fmt]
    return ctx.bundle_path().with_name(ctx.bundle_path().stem + suffix)


# ---------------------------------------------------------------- report


def report(ctx: Context) -> Outcome:
    """The HTML report of the evaluation (ct-infer report)."""
    from ct_infer.report import build_report

    r = ctx.cfg.report
    page = build_report(
        ctx.paths.eval_dir,
        ctx.paths.report_html.parent,
        crops_dir=ctx.paths.crops_dir,
        model=ctx.bundle_path() if ctx.bundle_path().is_file() else None,
        dataset_csv=ctx.paths.dataset_csv,
        grid_label=r.label,
        grid_split=r.split,
        per_class=r.per_class,
    )
    return Outcome(note=str(page))


def _report_inputs(ctx: Context) -> list[Path]:
    beside = [p for p in (ctx.bundle_path(), ctx.paths.dataset_csv) if p.is_file()]
    return [*eval_outputs(ctx), *beside]


STAGES = [
    Stage(
        "train",
        "train the classifier (ct-train engine)",
        train,
        _train_section,
        _train_inputs,
        lambda ctx: [ctx.paths.best_checkpoint, ctx.paths.final_metrics, ctx.paths.val_outputs],
    ),
    Stage(
        "bundle",
        "best checkpoint → calibrated model bundle with label taxonomy",
        bundle,
        sections("export.name", "export.calibrate", "crop.strategy", "crop.margin", "labels"),
        _bundle_inputs,
        lambda ctx: [ctx.bundle_path()],
    ),
    Stage(
        "evaluate",
        "bundle on every split (ct-infer evaluate)",
        evaluate,
        sections("evaluate"),
        lambda ctx: [ctx.bundle_path(), *_train_inputs(ctx)],
        eval_outputs,
    ),
    Stage(
        "export",
        "TorchScript / ONNX exports",
        export,
        sections("export"),
        lambda ctx: [ctx.bundle_path()],
        lambda ctx: [export_path(ctx, f) for f in ctx.cfg.export.formats],
    ),
    Stage(
        "report",
        "HTML report (ct-infer report)",
        report,
        sections("report"),
        _report_inputs,
        lambda ctx: [ctx.paths.report_html],
    ),
]
