"""Predictions from a checkpoint on one split (animl-ml's ``predict.py``).

Writes ``predictions/outputs_<split>.csv.gz`` (``path, label, weight`` and one probability
column per label, the layout of the seed's ``outputs_{split}.csv``) and
``predictions/metrics_<split>.json`` in the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ct_io.errors import CamtrapError
from ct_io.jsonio import write_json
from ct_io.plugins import CamtrapPluginManager
from ct_io.tables import write_csv
from ct_train import checkpoint
from ct_train.backbone import build_model
from ct_train.config import ExperimentConfig
from ct_train.data import eval_loader
from ct_train.distributed import DistInfo
from ct_train.engine import evaluate
from ct_train.losses import build_loss
from ct_train.session import Runtime, pick_amp, pick_device
from ct_train.tables import load_tables


def resolve_checkpoint(cfg: ExperimentConfig, name: str | Path) -> Path:
    """A checkpoint path as given, else relative to the run folder or its ``checkpoints/``."""
    path = Path(name)
    for candidate in (path, cfg.run_dir / path, cfg.run_dir / "checkpoints" / path):
        if candidate.is_file():
            return candidate
    raise CamtrapError(
        f"checkpoint {name} not found (looked in ., {cfg.run_dir}, {cfg.run_dir / 'checkpoints'})"
    )


def predict(
    cfg: ExperimentConfig,
    checkpoint_name: str | Path,
    split: str,
    *,
    out_dir: Path | None = None,
    pm: CamtrapPluginManager | None = None,
) -> dict[str, Any]:
    """Run the checkpoint's weights on ``split``; write outputs and metrics; return the metrics."""
    import attrs

    path = resolve_checkpoint(cfg, checkpoint_name)
    state = checkpoint.load(path)
    tables = load_tables(cfg.data, multilabel=cfg.train.multilabel)
    frame = tables.split(split)
    if frame.empty:
        raise CamtrapError(
            f"split {split!r} has no crops (splits: {', '.join(sorted(set(tables.frame['split'])))})"
        )
    labels = state.get("meta", {}).get("labels", tables.labels)
    if list(labels) != tables.labels:
        raise CamtrapError(
            f"{path}: trained on labels {labels[:5]}…, but {cfg.data.label_index} lists {tables.labels[:5]}…"
        )
    model = build_model(attrs.evolve(cfg.model, pretrained="none"), len(labels), pm)
    model.module.load_state_dict(state["model"])
    device = pick_device(cfg.train.device, DistInfo())
    rt = Runtime(device, pick_amp(cfg.train.amp, device), cfg.train.channels_last, DistInfo())
    model.module.to(device)
    size = cfg.data.image_size or model.input_size
    multilabel = tables.multilabel
    loader = eval_loader(
        cfg.data,
        frame,
        size,
        model.mean,
        model.std,
        pin_memory=device.type == "cuda",
        num_classes=len(labels) if multilabel else None,
    )
    loss_fn = build_loss(
        cfg.loss.name, cfg.loss.options, len(labels), tables.class_counts("train"), pm
    ).to(device)
    result = evaluate(
        model.module,
        loader,
        loss_fn,
        rt,
        labels,
        multilabel=multilabel,
        threshold=cfg.train.multilabel_threshold,
    )

    out_dir = out_dir or cfg.run_dir / "predictions"
    rows = frame.iloc[result.rows]
    table = pd.DataFrame(
        {
            "path": rows["path"].to_numpy(),
            "label": rows["label"].to_numpy(),
            "weight": rows["weight"].to_numpy(),
        }
    )
    table = pd.concat([table, pd.DataFrame(result.probs, columns=labels)], axis=1)
    write_csv(table, out_dir / f"outputs_{split}.csv.gz")
    metrics = {"checkpoint": str(path), "split": split, **result.metrics}
    write_json(out_dir / f"metrics_{split}.json", metrics)
    return metrics
