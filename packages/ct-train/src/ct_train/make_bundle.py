"""``ct-train bundle``: a run's best checkpoint → a ct-infer model bundle.

The pipeline's ``bundle`` stage as a command, for runs trained with ``ct-train train``
(or any run whose checkpoints exist): the weights of ``checkpoints/best.pt`` with their
labels and preprocessing, calibrated on the val outputs when there are some, written to
``model/<export.name or run folder name>.safetensors`` where ``ct-infer evaluate --run``
finds it. Checkpoints are pickles and never leave the run folder; bundles are safetensors.
"""

from __future__ import annotations

from pathlib import Path

from ct_io.errors import CamtrapError
from ct_io.plugins import CamtrapPluginManager
from ct_train.config import CONFIG_NAME, ExperimentConfig


def config_path(path: Path) -> Path:
    """``path`` itself, or the ``config.yml`` of a run folder."""
    return path / CONFIG_NAME if path.is_dir() else path


def make_bundle(
    cfg: ExperimentConfig, *, force: bool = False, pm: CamtrapPluginManager | None = None
) -> tuple[Path, str]:
    """Run the bundle stage on ``cfg``'s run folder (skipped when up to date unless
    ``force``); returns the bundle's path and what the stage said (its temperature, or
    why it is not calibrated; empty when skipped)."""
    from ct_train.pipeline.runner import run_pipeline
    from ct_train.pipeline.stages import Context, RunPaths

    paths = RunPaths.of(cfg)
    if not paths.best_checkpoint.is_file():
        raise CamtrapError(
            f"{paths.best_checkpoint} not found — train first (ct-train train {cfg.run_dir / CONFIG_NAME})"
        )
    result = run_pipeline(
        cfg, start="bundle", stop="bundle", force=["bundle"] if force else [], pm=pm
    )
    if result.error is not None:
        raise CamtrapError(result.error)
    report = result.stage("bundle")
    said = [f"{k} {v}" for k, v in report.counts.items() if k in ("temperature", "val NLL")]
    said += [report.note] if report.note else []
    return Context(cfg, paths, pm).bundle_path(), "; ".join(said)
