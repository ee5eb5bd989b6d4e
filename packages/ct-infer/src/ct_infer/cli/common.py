"""What several commands build from their options: run settings, a predictor, rollup."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ct_infer.precision import Precision
from ct_infer.runtime import Runtime
from ct_io.clitools import console

if TYPE_CHECKING:
    from ct_infer.classify import RunSettings
    from ct_infer.predictor import Predictor


def run_settings(
    batch_size: int | None,
    workers: int | None,
    device: str,
    precision: Precision,
    compile_model: bool,
    bf16: bool = False,
    runtime: Runtime = Runtime.TORCH,
) -> RunSettings:
    """Settings from the shared batch/workers/device/precision/compile/runtime options.

    ``bf16`` is the deprecated ``--bf16``: it means ``--precision bf16``.
    """
    from ct_infer.classify import RunSettings

    if bf16:
        console.print("[yellow]--bf16 is deprecated: use --precision bf16[/]")
        precision = Precision.BF16
    settings = RunSettings(
        batch_size=batch_size,
        device=device,
        precision=precision,
        compile=compile_model,
        runtime=runtime,
    )
    if workers is not None:
        settings.workers = workers
    return settings


def load_predictor(
    model: Path,
    label_index: Path | None,
    image_size: int | None,
    settings: RunSettings,
    calibrate: bool = True,
) -> Predictor:
    """The model (bundle or export) ready to classify on the settings' device and runtime."""
    return predictor_factory(model, label_index, image_size, settings, calibrate)()


def predictor_factory(
    model: Path,
    label_index: Path | None,
    image_size: int | None,
    settings: RunSettings,
    calibrate: bool = True,
) -> Callable[[], Predictor]:
    """A picklable zero-argument loader of that predictor (what each engine worker calls)."""
    from ct_infer.engine_jobs import predictor_loader

    return functools.partial(
        predictor_loader,
        model,
        label_index,
        image_size,
        settings.device,
        settings.precision,
        settings.compile,
        calibrate,
        settings.runtime,
    )


def rollup_settings(
    threshold: float | None,
    labels: list[str],
    bundle_taxonomy: dict[str, str] | None,
    taxonomy: Path | None,
    rollup_spec: Path | None,
    mapping: dict[str, list[str]] | None,
) -> dict[str, object]:
    """``MergeOptions`` fields for --rollup (empty without it); errors say what to pass."""
    if threshold is None:
        if taxonomy is not None or rollup_spec is not None:
            console.print("[yellow]--taxonomy/--rollup-spec have no effect without --rollup[/]")
        return {}
    from ct_infer.rollup import rollup_lineages

    lineages = rollup_lineages(
        labels,
        bundle_taxonomy=bundle_taxonomy,
        taxonomy_csv=taxonomy,
        rollup_spec=rollup_spec,
        target_mapping=mapping,
    )
    return {"rollup_threshold": threshold, "lineages": lineages}
