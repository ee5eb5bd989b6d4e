"""The training loop: ``train_one_epoch``, ``evaluate``, ``fit`` (torchvision-reference style)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from attrs import define

from ct_io.atomic import remove_stale_temp_files
from ct_io.hookspecs import ExperimentLogger
from ct_io.jsonio import write_json
from ct_io.plugins import CamtrapPluginManager
from ct_train import checkpoint
from ct_train.backbone import classifier_head
from ct_train.config import VAL_OUTPUTS_NAME, ExperimentConfig, save_resolved, unstructure
from ct_train.data import readable
from ct_train.distributed import DistInfo, all_gather_objects, barrier, cleanup, init_from_env
from ct_train.figures import confusion_image, example_grid
from ct_train.loggers import make_loggers
from ct_train.metrics import extreme_examples, summarize, summarize_multilabel
from ct_train.preflight import check_model_and_loss, resolve_plugins
from ct_train.session import Runtime, Session, build_session, wrap
from ct_train.throughput import EpochClock, epoch_rates

log = logging.getLogger(__name__)


@define
class EvalResult:
    """One split evaluated: metrics, confusion matrix, and per-crop rows, probabilities, targets."""

    metrics: dict[str, float]
    confusion: np.ndarray
    rows: np.ndarray  # row numbers in the split's table
    probs: np.ndarray
    targets: np.ndarray


def set_trainable(s: Session, head_only: bool) -> None:
    """``finetune``: train the classifier head only, BatchNorm statistics frozen."""
    module = s.model.module
    module.requires_grad_(not head_only)
    if head_only:
        classifier_head(module).requires_grad_(True)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def train_one_epoch(
    s: Session, epoch: int, loggers: Sequence[ExperimentLogger], on_step: Callable[[], None]
) -> dict[str, float]:
    """Train until the epoch's step count, continuing from ``s.progress.step_in_epoch``."""
    p, cfg, rt = s.progress, s.cfg, s.rt
    s.net.train()
    set_trainable(s, head_only=epoch < cfg.train.finetune)
    s.sampler.set_epoch(epoch, start=p.step_in_epoch * cfg.data.batch_size)
    sums = p.sums or {"loss": 0.0, "correct": 0.0, "count": 0.0}
    clock = EpochClock(sums)
    for logger in loggers:
        logger.start_epoch(epoch, s.steps_per_epoch, p.step_in_epoch)
    for images, targets, _weights, _rows in s.train_loader:
        images, targets = rt.to_device(images), targets.to(rt.device, non_blocking=True)
        ok = readable(targets)
        with rt.autocast():
            logits = s.net(images)
        losses = s.loss_fn(logits.float()[ok], targets[ok])
        loss = losses.mean() if losses.numel() else logits.sum() * 0.0
        s.optimizer.zero_grad(set_to_none=True)
        s.scaler.scale(loss).backward()
        if cfg.optim.grad_clip:
            s.scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_(s.model.module.parameters(), cfg.optim.grad_clip)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.scheduler.step()

        p.step_in_epoch += 1
        p.global_step += 1
        p.unreadable += int((~ok).sum())
        sums["loss"] += float(losses.detach().sum())
        sums["correct"] += float(top1_hits(logits.detach()[ok], targets[ok]).sum())
        sums["count"] += float(ok.sum())
        clock.step(float(ok.sum()))
        p.sums = sums
        if p.step_in_epoch % cfg.train.log_every_steps == 0 or p.step_in_epoch == s.steps_per_epoch:
            for logger in loggers:
                logger.log_step(
                    p.step_in_epoch,
                    {"loss": loss.item(), "lr": float(s.scheduler.get_last_lr()[0])},
                )
        if p.step_in_epoch >= s.steps_per_epoch:
            break
        on_step()
    for logger in loggers:
        logger.end_epoch()
    per_rank = all_gather_objects(sums, rt.dist)
    total = {k: sum(d[k] for d in per_rank) for k in ("loss", "correct", "count")}
    n = max(total["count"], 1.0)
    return {
        "loss": total["loss"] / n,
        "acc_top1": total["correct"] / n,
        "lr": s.scheduler.get_last_lr()[0],
        **epoch_rates(per_rank),  # images_per_s without the start-up, startup_s apart
    }


@torch.inference_mode()
def evaluate(
    net: torch.nn.Module,
    loader: torch.utils.data.DataLoader[Any],
    loss_fn: torch.nn.Module,
    rt: Runtime,
    labels: Sequence[str],
    *,
    multilabel: bool = False,
    threshold: float = 0.5,
) -> EvalResult:
    """Probabilities, loss and metrics over one split (sharded over ranks, then gathered).

    Multi-label: a sigmoid per label, targets as 0/1 rows, mAP and per-label P/R at
    ``threshold`` (:func:`ct_train.metrics.summarize_multilabel`)."""
    net.eval()
    parts: list[tuple[np.ndarray, ...]] = []
    for images, targets, weights, rows in loader:
        ok = readable(targets)
        with rt.autocast():
            logits = net(rt.to_device(images)).float()
        logits, t = logits[ok.to(logits.device)], targets[ok].to(rt.device)
        losses = loss_fn(logits, t) if len(t) else logits.new_zeros(0)
        probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)
        parts.append(
            (
                rows[ok].numpy(),
                probs.cpu().numpy(),
                t.cpu().numpy(),
                weights[ok].numpy(),
                losses.cpu().numpy(),
            )
        )
    gathered = [x for rank_parts in all_gather_objects(parts, rt.dist) for x in rank_parts]
    c = len(labels)
    empty = {1: (0, c), 2: (0, c) if multilabel else (0,)}
    cols = [
        np.concatenate([g[i] for g in gathered]) if gathered else np.zeros(empty.get(i, (0,)))
        for i in range(5)
    ]
    order = np.argsort(cols[0], kind="stable")
    rows_, probs_, targets_, weights_, losses_ = (col[order] for col in cols)
    probs_ = probs_.reshape(-1, c)
    if multilabel:
        targets_ = targets_.reshape(-1, c).astype(np.float32)
        metrics, cm = summarize_multilabel(probs_, targets_, losses_, weights_, labels, threshold)
    else:
        targets_ = targets_.astype(np.int64)
        metrics, cm = summarize(probs_, targets_, losses_, weights_, labels)
    return EvalResult(metrics, cm, rows_, probs_, targets_)


def _evaluate(s: Session, split: str) -> EvalResult:
    """:func:`evaluate` on one split of the session, as its config says."""
    return evaluate(
        s.net,
        s.eval_loader(split),
        s.loss_fn,
        s.rt,
        s.labels,
        multilabel=s.tables.multilabel,
        threshold=s.cfg.train.multilabel_threshold,
    )


def top1_hits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per example: whether the most probable label is a true one."""
    top = logits.argmax(1)
    if targets.ndim == 2:
        return targets.gather(1, top[:, None]).squeeze(1) > 0.5
    return top == targets


def fit(
    cfg: ExperimentConfig, *, resume: bool = True, pm: CamtrapPluginManager | None = None
) -> dict[str, Any]:
    """Train as configured; returns the final metrics per split. Reruns continue from ``last.pt``."""
    dist = init_from_env(
        "cuda" if torch.cuda.is_available() and cfg.train.device in ("auto", "cuda") else "cpu"
    )
    try:
        plugins = resolve_plugins(cfg, pm)  # unknown, misconfigured or unusable: before any work
        s = build_session(cfg, dist, pm)
        check_model_and_loss(s, plugins)  # each plugin's contract, on a tiny batch
        ckpt_dir = cfg.run_dir / "checkpoints"
        if dist.is_main:  # a run killed while writing left its temp file
            for folder in (cfg.run_dir, ckpt_dir):
                for stale in remove_stale_temp_files(folder):
                    log.info("removed %s, left by an interrupted write", stale)
        if resume and (ckpt_dir / checkpoint.LAST).is_file():
            state = checkpoint.load(ckpt_dir / checkpoint.LAST)
            if state["meta"]["config_digest"] != s.meta()["config_digest"]:
                log.warning(
                    "the config changed since %s was written; resuming with the new values (--no-resume starts over)",
                    checkpoint.LAST,
                )
            s.load_state_dict(state)
            log.info("resuming at epoch %d, step %d", s.progress.epoch, s.progress.step_in_epoch)
        loggers = (
            make_loggers(cfg.loggers, cfg.run_dir, unstructure(cfg), pm) if dist.is_main else []
        )
        if dist.is_main:
            save_resolved(cfg)
        try:
            run_epochs(s, loggers, ckpt_dir)
        finally:
            for logger in loggers:
                logger.close()
        return final_evaluation(s, ckpt_dir)
    finally:
        cleanup(dist)


def run_epochs(s: Session, loggers: Sequence[ExperimentLogger], ckpt_dir: Path) -> None:
    """Epoch loop with validation, best checkpoint, early stopping and per-epoch checkpoints."""
    p, cfg, dist = s.progress, s.cfg, s.rt.dist
    split, _, key = cfg.train.early_stop.metric.partition("/")
    sign = 1.0 if cfg.train.early_stop.mode == "max" else -1.0
    every = cfg.train.checkpoint_every_steps

    def on_step() -> None:
        if every and p.step_in_epoch % every == 0:
            save_last(s, ckpt_dir, dist)

    while p.epoch < cfg.train.epochs and not p.finished:
        epoch = p.epoch
        if (
            epoch == cfg.train.finetune
            and cfg.train.finetune
            and p.step_in_epoch == 0
            and dist.enabled
        ):
            s.net = wrap(s.model.module, cfg, s.rt)  # DDP must see the newly trainable parameters
        train_metrics = train_one_epoch(s, epoch, loggers, on_step)
        results = {
            name: _evaluate(s, name)
            for name in dict.fromkeys(["val", split])
            if name in set(s.tables.frame["split"])
        }
        watched = results.get(split)
        value = watched.metrics.get(key) if watched else None
        improved = value is not None and (
            p.best_value is None or sign * value > sign * p.best_value
        )
        if improved or p.best_epoch < 0:
            p.best_value, p.best_epoch, p.bad_epochs = value, epoch, 0
            if dist.is_main:
                checkpoint.save(
                    ckpt_dir / checkpoint.BEST,
                    {
                        "model": s.model.module.state_dict(),
                        "meta": {
                            **s.meta(),
                            "epoch": epoch,
                            "metric": cfg.train.early_stop.metric,
                            "value": value,
                        },
                    },
                )
        else:
            p.bad_epochs += 1
        patience = cfg.train.early_stop.patience
        p.finished = bool(patience and p.bad_epochs >= patience)
        p.epoch, p.step_in_epoch, p.sums = epoch + 1, 0, {}
        save_last(s, ckpt_dir, dist)
        if dist.is_main:
            log_epoch(s, loggers, epoch, train_metrics, results)
        if p.finished:
            log.info(
                "early stop: %s did not improve for %d epochs (best %.4g at epoch %d)",
                cfg.train.early_stop.metric,
                patience,
                p.best_value or 0,
                p.best_epoch,
            )


def save_last(s: Session, ckpt_dir: Path, dist: DistInfo) -> None:
    """Write ``checkpoints/last.pt`` (rank 0 writes; every rank reads its state in step)."""
    state = s.state_dict()  # every rank: the RNG states must be read in step
    if dist.is_main:
        checkpoint.save(ckpt_dir / checkpoint.LAST, state)
    barrier(dist)


def log_epoch(
    s: Session,
    loggers: Sequence[ExperimentLogger],
    epoch: int,
    train: dict[str, float],
    results: dict[str, EvalResult],
) -> None:
    """Metrics, confusion matrices and (optionally) TP/FP/FN example grids to every logger
    (multi-label runs: metrics only, per label)."""
    single = not s.tables.multilabel
    k = s.cfg.train.log_extreme_examples if single else 0
    for logger in loggers:
        logger.log_metrics(train, epoch, prefix="train/")
    for name, res in results.items():
        for logger in loggers:
            logger.log_metrics(res.metrics, epoch, prefix=f"{name}/")
            if single:
                image = confusion_image(res.confusion, s.labels)
                logger.log_figure(f"{name}/confusion_matrix", image, epoch)
        if k and len(res.rows):
            frame = s.tables.split(name)
            for kind, per_label in extreme_examples(res.probs, res.targets, k).items():
                for label, picks in per_label.items():
                    paths = [s.cfg.data.crops_dir / frame["path"][res.rows[i]] for i in picks]
                    captions = [
                        f"{s.labels[int(res.probs[i].argmax())]} {res.probs[i].max():.2f}"
                        for i in picks
                    ]
                    for logger in loggers:
                        logger.log_figure(
                            f"{name}/{kind}/{s.labels[label]}", example_grid(paths, captions), epoch
                        )


def final_evaluation(s: Session, ckpt_dir: Path) -> dict[str, Any]:
    """The best weights on every split; ``final_metrics.json`` in the run folder, and the
    val probabilities in ``final_val_outputs.npz`` (val is always evaluated when present)."""
    best = checkpoint.load(ckpt_dir / checkpoint.BEST)
    s.model.module.load_state_dict(best["model"])
    present = set(s.tables.frame["split"])
    out: dict[str, Any] = {
        "best_epoch": s.progress.best_epoch,
        "unreadable_crops": s.progress.unreadable,
        "splits": {},
    }
    wanted = list(s.cfg.train.eval_splits_at_end)
    val_outputs = s.cfg.run_dir / VAL_OUTPUTS_NAME
    for name in dict.fromkeys([*wanted, "val"]):
        if name not in present:
            continue
        result = _evaluate(s, name)
        if name in wanted:
            out["splits"][name] = result.metrics
        if name == "val" and s.rt.dist.is_main:
            save_outputs(val_outputs, result)
    if "val" not in present and s.rt.dist.is_main:
        val_outputs.unlink(missing_ok=True)  # not from these weights
    if s.rt.dist.is_main:
        write_json(s.cfg.run_dir / "final_metrics.json", out)
    return out


def save_outputs(path: Path, result: EvalResult) -> None:
    """Probabilities and targets of one split as a ``.npz`` (atomically)."""
    import io

    from ct_io.atomic import write_bytes_atomic

    buf = io.BytesIO()
    np.savez(buf, probs=result.probs.astype(np.float32), targets=result.targets)
    write_bytes_atomic(path, buf.getvalue())


def start(
    config_path: str | Path,
    overrides: Sequence[str] = (),
    *,
    resume: bool = True,
    pm: CamtrapPluginManager | None = None,
) -> dict[str, Any]:
    """Load ``config.yml`` (+ ``--set`` overrides) and :func:`fit`."""
    from ct_train.config import load_config

    return fit(load_config(config_path, overrides), resume=resume, pm=pm)
