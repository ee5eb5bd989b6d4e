"""The types the stages of ``ct-train run`` are made of, and the helpers they share.

A stage is a small function ``run(ctx) -> Outcome`` plus three declarations the runner
uses to decide whether it is up to date: the config it depends on (``section``), the
files it reads (``inputs``) and the files it writes (``outputs``). The stages themselves
live in ``data_stages`` and ``model_stages``; their order is the runner's ``STAGES``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import define, field, frozen

from ct_io.errors import CamtrapError
from ct_io.jsonio import read_json
from ct_io.plugins import CamtrapPluginManager
from ct_train.config import VAL_OUTPUTS_NAME, ExperimentConfig, unstructure


@frozen
class RunPaths:
    """Where every stage of one run folder reads and writes."""

    run_dir: Path
    sources_dir: Path
    crops_dir: Path
    data_dir: Path
    dataset_csv: Path
    label_index: Path
    splits: Path

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> RunPaths:
        """The paths of ``cfg``'s run folder."""
        d = cfg.data
        return cls(
            run_dir=cfg.run_dir,
            sources_dir=d.sources_dir,
            crops_dir=d.crops_dir,
            data_dir=d.dir,
            dataset_csv=d.dir / d.dataset_csv,
            label_index=d.dir / d.label_index,
            splits=d.dir / d.splits,
        )

    @property
    def data_json(self) -> Path:
        """The fetched (or combined) dataset: name, CCT, images folder, MD JSON."""
        return self.run_dir / "sources" / "dataset.json"

    @property
    def queried_images(self) -> Path:
        """The selected images with their labels (select stage)."""
        return self.run_dir / "selection" / "queried_images.json"

    @property
    def selection_report(self) -> Path:
        """Counts per label and dataset, and conflicts (select stage)."""
        return self.run_dir / "selection" / "selection_report.json"

    @property
    def detections(self) -> Path:
        """Detector boxes for selected images that had none (detect stage)."""
        return self.run_dir / "detections" / "detections.json"

    @property
    def crops_manifest(self) -> Path:
        """Every crop made and where it came from (crop stage)."""
        return self.crops_dir / "crops.csv"

    @property
    def best_checkpoint(self) -> Path:
        """The best weights by ``train.early_stop.metric`` (train stage)."""
        return self.run_dir / "checkpoints" / "best.pt"

    @property
    def final_metrics(self) -> Path:
        """The best weights' metrics per split (train stage)."""
        return self.run_dir / "final_metrics.json"

    @property
    def val_outputs(self) -> Path:
        """The best weights' val probabilities (written by the engine; calibration fits on them)."""
        return self.run_dir / VAL_OUTPUTS_NAME

    @property
    def model_dir(self) -> Path:
        """The bundle and its exports."""
        return self.run_dir / "model"

    @property
    def eval_dir(self) -> Path:
        """The bundle's outputs and metrics per split (evaluate stage)."""
        return self.run_dir / "evaluation"

    @property
    def report_html(self) -> Path:
        """The HTML report (report stage)."""
        return self.run_dir / "report" / "report.html"


@define
class Context:
    """What a stage function gets: the config, the paths, plugins, and whether to resume."""

    cfg: ExperimentConfig
    paths: RunPaths
    pm: CamtrapPluginManager | None = None
    #: True when this stage was interrupted before with the same inputs and config.
    resume: bool = False

    def bundle_path(self) -> Path:
        """``model/<export.name, else the run folder's name>.safetensors``."""
        name = self.cfg.export.name or self.cfg.run_dir.name or "model"
        return self.paths.model_dir / f"{name}.safetensors"


@define
class Outcome:
    """What a stage reports for the summary table."""

    counts: dict[str, Any] = field(factory=dict)
    note: str = ""
    #: False when there was nothing to do (e.g. no detector needed): shown as "not needed".
    needed: bool = True


@frozen
class Stage:
    """One step of the chain."""

    name: str
    description: str
    run: Callable[[Context], Outcome]
    section: Callable[[ExperimentConfig], Any]
    inputs: Callable[[Context], list[Path]]
    outputs: Callable[[Context], list[Path]]
    #: Data stages only run when the config lists sources.
    needs_sources: bool = False


def sections(*names: str) -> Callable[[ExperimentConfig], Any]:
    """The config sections (dotted names) a stage depends on, JSON-ready."""

    def pick(cfg: ExperimentConfig) -> Any:
        data = unstructure(cfg)
        out = {}
        for name in names:
            node: Any = data
            for part in name.split("."):
                node = node[part]
            out[name] = node
        return out

    return pick


def data_record(ctx: Context) -> dict[str, Any]:
    """The fetch stage's record of the dataset: ``name``, ``cct``, ``images_dir``,
    ``detections`` and the source's ``taxonomy`` and ``aliases``."""
    if not ctx.paths.data_json.is_file():
        raise CamtrapError(f"{ctx.paths.data_json} missing — run the fetch stage first")
    rec: dict[str, Any] = read_json(ctx.paths.data_json)
    return rec


def fetched_record(ctx: Context) -> dict[str, Any] | None:
    """``data_record`` when this run fetches its data and the fetch stage has run, else None."""
    return data_record(ctx) if ctx.cfg.sources and ctx.paths.data_json.is_file() else None
