"""Everything one training run holds, built from the config; saved and restored as a whole."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from attrs import asdict, define, field

from ct_infer.precision import Precision, resolve_precision
from ct_io.plugins import CamtrapPluginManager
from ct_train import checkpoint
from ct_train.backbone import Model, build_model
from ct_train.config import ExperimentConfig, config_digest
from ct_train.data import eval_loader, train_loader
from ct_train.distributed import DistInfo
from ct_train.losses import build_loss
from ct_train.optim import build_optimizer, build_scheduler
from ct_train.sampling import EpochSampler, sampling_weights
from ct_train.tables import DatasetTables, load_tables, target_matrix

log = logging.getLogger(__name__)


@define
class Progress:
    """Where the run is; saved in every checkpoint."""

    epoch: int = 0  # the epoch in progress (or the next to start)
    step_in_epoch: int = 0  # optimizer steps already done in ``epoch``
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs since the best one
    finished: bool = False
    unreadable: int = 0  # crops that could not be decoded (left out of the loss)
    sums: dict[str, float] = field(factory=dict)  # this epoch's running train sums


@define
class Runtime:
    """Device and numeric settings shared by training and evaluation."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    dist: DistInfo

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision in ``amp_dtype`` for the block (a no-op when AMP is off)."""
        if self.amp_dtype is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.amp_dtype):
                yield

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device, channels-last when configured."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return images.to(self.device, non_blocking=True, memory_format=fmt)


@define
class Session:
    """Everything one training run works with, built from the config by :func:`build_session`."""

    cfg: ExperimentConfig
    tables: DatasetTables
    model: Model
    net: torch.nn.Module  # what runs forward: maybe DDP-wrapped and/or compiled
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    sampler: EpochSampler
    train_loader: torch.utils.data.DataLoader[Any]
    rt: Runtime
    steps_per_epoch: int
    progress: Progress = field(factory=Progress)

    @property
    def labels(self) -> list[str]:
        """Label names in target order."""
        return self.tables.labels

    @property
    def num_classes_if_multilabel(self) -> int | None:
        """The label count for multi-label loaders (their targets are 0/1 rows), else None."""
        return len(self.labels) if self.tables.multilabel else None

    def eval_loader(self, split: str) -> torch.utils.data.DataLoader[Any]:
        """A loader over ``split``'s crops with the eval transform (this rank's shard)."""
        m = self.model
        pin = self.rt.device.type == "cuda"
        size = self.cfg.data.image_size or m.input_size
        return eval_loader(
            self.cfg.data,
            self.tables.split(split),
            size,
            m.mean,
            m.std,
            rank=self.rt.dist.rank,
            world_size=self.rt.dist.world_size,
            pin_memory=pin,
            num_classes=self.num_classes_if_multilabel,
        )

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs: weights, optimizer, schedule, scaler, sampler, RNGs, progress."""
        return {
            "model": self.model.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": checkpoint.rng_state(),
            "progress": asdict(self.progress),
            "meta": self.meta(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved (resuming from ``last.pt``)."""
        self.model.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        checkpoint.set_rng_state(state["rng"])
        self.progress = Progress(**state["progress"])

    def meta(self) -> dict[str, Any]:
        """What a reader of ``best.pt`` needs to use the weights."""
        m = self.model
        return {
            "labels": list(self.labels),
            "backbone": self.cfg.model.backbone,
            "backbone_options": dict(self.cfg.model.options),
            "input_size": int(self.cfg.data.image_size or m.input_size),
            "mean": [float(v) for v in m.mean],
            "std": [float(v) for v in m.std],
            "config_digest": config_digest(self.cfg),
            "multilabel": bool(self.cfg.train.multilabel),
        }


def pick_device(name: str, dist: DistInfo) -> torch.device:
    """``auto``: this rank's CUDA GPU, else Apple MPS, else the CPU; any other name as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank)
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_precision(setting: str) -> Precision:
    """``train.amp`` (auto, bf16, fp16, off) as ct-infer's :class:`Precision`."""
    return Precision.FP32 if setting == "off" else Precision(setting)


def pick_amp(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``train.amp`` means on ``device`` (None: fp32).

    ``auto`` is ct-infer's decision: bf16 on CPUs with native bf16 and on CUDA GPUs that
    have it, fp16 on other CUDA GPUs, fp32 elsewhere (emulated bf16 is slower than fp32).
    """
    return resolve_precision(amp_precision(setting), device.type).dtype()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_session(
    cfg: ExperimentConfig, dist: DistInfo, pm: CamtrapPluginManager | None = None
) -> Session:
    """Tables, model, loss, optimizer, schedule, sampler and loader, as the config says."""
    seed_everything(cfg.train.seed)
    device = pick_device(cfg.train.device, dist)
    rt = Runtime(device, pick_amp(cfg.train.amp, device), cfg.train.channels_last, dist)
    tables = load_tables(cfg.data, cfg.sampling, multilabel=cfg.train.multilabel)
    model = build_model(cfg.model, len(tables.labels), pm)
    model.module.to(device)
    if rt.channels_last:
        model.module.to(memory_format=torch.channels_last)
    loss_fn = build_loss(
        cfg.loss.name, cfg.loss.options, len(tables.labels), tables.class_counts("train"), pm
    ).to(device)

    train = tables.split("train")
    probs = sampling_weights(
        target_matrix(train, len(tables.labels))
        if tables.multilabel
        else train["target"].to_numpy(),
        train["weight"].to_numpy(),
        len(tables.labels),
        cfg.sampling.method,
    )
    sampler = EpochSampler(
        len(train), probs, seed=cfg.train.seed, rank=dist.rank, world_size=dist.world_size
    )
    size = cfg.data.image_size or model.input_size
    loader = train_loader(
        cfg.data,
        train,
        sampler,
        size,
        model.mean,
        model.std,
        pin_memory=device.type == "cuda",
        num_classes=len(tables.labels) if tables.multilabel else None,
    )
    steps = sampler.per_rank // cfg.data.batch_size
    if steps == 0:
        from ct_io.errors import CamtrapError

        raise CamtrapError(
            f"train split has {len(train)} crops, fewer than one batch of {cfg.data.batch_size} per process; lower data.batch_size"
        )
    if cfg.train.max_steps_per_epoch:
        steps = min(steps, cfg.train.max_steps_per_epoch)

    optimizer = build_optimizer(model.module.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, steps, cfg.train.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=rt.amp_dtype == torch.float16)
    net = wrap(model.module, cfg, rt)
    return Session(
        cfg, tables, model, net, loss_fn, optimizer, scheduler, scaler, sampler, loader, rt, steps
    )


def wrap(module: torch.nn.Module, cfg: ExperimentConfig, rt: Runtime) -> torch.nn.Module:
    """The module as it runs forward: DDP-wrapped under torchrun, compiled if ``train.compile``."""
    net = module
    if rt.dist.enabled:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
    if cfg.train.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return net
