"""Built-in experiment loggers: console (rich), TensorBoard, Comet (optional).

Each logger is a ``ct_io.hookspecs.ExperimentLogger`` (``log_metrics``, ``log_figure``,
``close``, and the progress methods ``start_epoch``, ``log_step``, ``end_epoch``, no-ops
unless overridden). Factories are called as ``factory(run_dir, config,
options)``; heavy libraries are imported inside them, so a logger that is not enabled
costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import define

from ct_io.errors import CamtrapError, PluginError
from ct_io.hookspecs import ExperimentLogger
from ct_io.plugins import CamtrapPluginManager, Registration, build_options, collect
from ct_io.redact import redact_mapping

COMET_VARS = ("COMET_API_KEY", "COMET_PROJECT_NAME", "COMET_WORKSPACE")


# ------------------------------------------------------------------ console


@define
class ConsoleOptions:
    progress: bool = True  # a rich progress bar per epoch (off: one line per epoch)


class ConsoleLogger(ExperimentLogger):
    """Rich progress per epoch and step; a one-line summary of each evaluation."""

    def __init__(self, options: ConsoleOptions) -> None:
        from ct_io.clitools import console

        self.console = console
        self.options = options
        self._progress: Any = None
        self._task: Any = None

    def start_epoch(self, epoch: int, total_steps: int, done: int = 0) -> None:
        """Start the epoch's progress bar (``done`` steps already made when resuming)."""
        if not self.options.progress:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn(f"epoch {epoch}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=total_steps, completed=done, info="")

    def log_step(self, step_in_epoch: int, metrics: Mapping[str, float]) -> None:
        """Advance the bar and show the running train metrics."""
        if self._progress is not None:
            info = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            self._progress.update(self._task, completed=step_in_epoch, info=info)

    def end_epoch(self) -> None:
        """Remove the epoch's progress bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None:
        """One line with the headline metrics of an evaluation."""
        keys = (
            "loss",
            "acc_top1",
            "acc_top3",
            "mAP",
            "recall_macro",
            "lr",
            "images_per_s",
            "startup_s",
        )
        shown = "  ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)
        if shown:
            self.console.print(
                f"[bold]epoch {step}[/] {prefix.rstrip('/')}: {shown}", highlight=False
            )

    def log_figure(self, tag: str, image: Any, step: int) -> None:
        """Figures are not shown on the console."""
        pass

    def close(self) -> None:
        """Stop any progress bar still running."""
        self.end_epoch()


def make_console(run_dir: Path, config: dict[str, Any], options: ConsoleOptions) -> ConsoleLogger:
    return ConsoleLogger(options)


# ------------------------------------------------------------------ tensorboard


@define
class TensorBoardOptions:
    subdir: str = "tensorboard"


class TensorBoardLogger(ExperimentLogger):
    """Scalars and images in ``<run>/tensorboard`` (``tensorboard --logdir runs``)."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"{prefix}{key}", value, step)
        self.writer.flush()

    def log_figure(self, tag: str, image: Any, step: int) -> None:
        import numpy as np

        self.writer.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


def make_tensorboard(
    run_dir: Path, config: dict[str, Any], options: TensorBoardOptions
) -> TensorBoardLogger:
    return TensorBoardLogger(run_dir / options.subdir)


# ------------------------------------------------------------------ comet


@define
class CometOptions:
    #: A ``.env`` file with COMET_API_KEY / COMET_PROJECT_NAME / COMET_WORKSPACE (relative
    #: to the run folder, then its parents); variables already set win.
    env_file: str = ".env"
    experiment_name: str | None = None


def comet_settings(run_dir: Path, env_file: str) -> dict[str, str]:
    """The three COMET_* values from the environment, else from the nearest ``.env``."""
    from dotenv import dotenv_values

    found: dict[str, str] = {}
    for folder in [run_dir, *run_dir.parents]:
        candidate = folder / env_file
        if candidate.is_file():
            found = {k: v for k, v in dotenv_values(candidate).items() if k in COMET_VARS and v}
            break
    settings = {k: os.environ.get(k) or found.get(k, "") for k in COMET_VARS}
    if not settings["COMET_API_KEY"]:
        raise CamtrapError(
            f"comet logger: COMET_API_KEY is not set — put it in {env_file} next to config.yml or in the environment"
        )
    return settings


class CometLogger(ExperimentLogger):
    """Metrics and images to comet.com; the API key never leaves this object."""

    def __init__(self, run_dir: Path, config: dict[str, Any], options: CometOptions) -> None:
        try:
            import comet_ml
        except ImportError:
            raise CamtrapError(
                "comet logger: the comet_ml package is not installed (pip install comet-ml)"
            ) from None
        s = comet_settings(run_dir, options.env_file)
        self.experiment = comet_ml.Experiment(
            api_key=s["COMET_API_KEY"],
            project_name=s["COMET_PROJECT_NAME"] or None,
            workspace=s["COMET_WORKSPACE"] or None,
        )
        self.experiment.set_name(options.experiment_name or f"{run_dir.parent.name}/{run_dir.name}")
        self.experiment.log_parameters(_flatten(redact_mapping(config)))

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None:
        self.experiment.log_metrics(
            {f"{prefix}{k}": v for k, v in metrics.items()}, step=step, epoch=step
        )

    def log_figure(self, tag: str, image: Any, step: int) -> None:
        self.experiment.log_image(image, name=tag, step=step)

    def close(self) -> None:
        self.experiment.end()


def make_comet(run_dir: Path, config: dict[str, Any], options: CometOptions) -> CometLogger:
    return CometLogger(run_dir, config, options)


def comet_preflight(run_dir: Path, options: CometOptions) -> None:
    """Before any work (``ct_train.preflight``): the package is installed and the key set."""
    if not _importable("comet_ml"):
        raise CamtrapError(
            "comet logger: the comet_ml package is not installed (pip install comet-ml)"
        )
    comet_settings(run_dir, options.env_file)


make_comet.preflight = comet_preflight  # type: ignore[attr-defined]


def _importable(name: str) -> bool:
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ------------------------------------------------------------------ accessors


def list_loggers(pm: CamtrapPluginManager | None = None) -> list[Registration]:
    return list(collect("logger", pm))


def get_logger(name: str, pm: CamtrapPluginManager | None = None) -> Registration:
    return collect("logger", pm).get(name)


def validate_loggers(specs: Sequence[Any], pm: CamtrapPluginManager | None = None) -> None:
    """Check each configured logger's name and options (fails before training starts)."""
    for spec in specs:
        build_options(get_logger(spec.name, pm), spec.options)


def make_loggers(
    specs: Sequence[Any],
    run_dir: Path,
    config: dict[str, Any],
    pm: CamtrapPluginManager | None = None,
) -> list[ExperimentLogger]:
    """Create the configured loggers; one lacking a method of the protocol fails by name."""
    loggers = []
    for spec in specs:
        reg = get_logger(spec.name, pm)
        logger = reg.create(run_dir, config, options=spec.options)
        missing = [
            m
            for m in vars(ExperimentLogger)
            if m[0] != "_" and not callable(getattr(logger, m, None))
        ]
        if missing:
            raise PluginError(
                f"logger {reg.name!r} of plugin {reg.plugin!r} ({reg.distribution}) has no "
                f"{', '.join(missing)} — see ct_io.hookspecs.ExperimentLogger (subclass it to "
                "get the progress methods as no-ops)"
            )
        loggers.append(logger)
    return loggers
