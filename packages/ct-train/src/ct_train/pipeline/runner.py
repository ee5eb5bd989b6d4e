"""Run the stages in order: skip what is up to date, stop at the first failure, summarize."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from attrs import define, field
from rich.markup import escape
from rich.table import Table

from ct_io.errors import CamtrapError
from ct_io.plugins import CamtrapPluginManager
from ct_io.redact import redact_text
from ct_train.config import ExperimentConfig
from ct_train.pipeline import data_stages, model_stages
from ct_train.pipeline.digests import PipelineState, StageRecord, config_digest
from ct_train.pipeline.stages import Context, Outcome, RunPaths, Stage

log = logging.getLogger(__name__)

#: Every stage, in the order they run.
STAGES: tuple[Stage, ...] = (*data_stages.STAGES, *model_stages.STAGES)
#: Their names, in that order (what ``--from``, ``--to`` and ``--force`` take).
STAGE_NAMES = tuple(stage.name for stage in STAGES)

RAN, SKIPPED, NOT_NEEDED, NOT_RUN, FAILED = "ran", "skipped", "not needed", "not run", "failed"
STYLE = {RAN: "green", SKIPPED: "cyan", NOT_NEEDED: "dim", NOT_RUN: "dim", FAILED: "bold red"}


@define
class StageReport:
    """One row of the summary: a stage's status, time, counts and note."""

    name: str
    status: str
    seconds: float = 0.0
    counts: dict[str, object] = field(factory=dict)
    note: str = ""


@define
class PipelineResult:
    """Every stage's report and the first error, if any (``run_pipeline``'s result)."""

    run_dir: Path
    stages: list[StageReport]
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether no stage failed."""
        return self.error is None

    def stage(self, name: str) -> StageReport:
        """The report of the stage called ``name``."""
        return next(s for s in self.stages if s.name == name)

    def table(self) -> Table:
        """The stage-by-stage summary."""
        t = Table(title=f"ct-train run — {self.run_dir}", title_justify="left")
        t.add_column("stage")
        t.add_column("status")
        t.add_column("time", justify="right")
        t.add_column("result")
        for s in self.stages:
            counts = ", ".join(f"{k} {_fmt(v)}" for k, v in s.counts.items())
            result = "; ".join(x for x in (counts, s.note) if x)
            timing = f"{s.seconds:.1f} s" if s.status in (RAN, FAILED) else ""
            t.add_row(s.name, f"[{STYLE[s.status]}]{s.status}[/]", timing, escape(result))
        return t


def _fmt(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def check_range(start: str | None, stop: str | None) -> tuple[int, int]:
    """Indexes of ``--from`` / ``--to`` (unknown names: one line listing the stages)."""
    names = list(STAGE_NAMES)
    for value in (start, stop):
        if value is not None and value not in names:
            raise CamtrapError(f"unknown stage {value!r}; stages: {', '.join(names)}")
    lo = names.index(start) if start else 0
    hi = names.index(stop) if stop else len(names) - 1
    if lo > hi:
        raise CamtrapError(f"--from {start} comes after --to {stop} (order: {' → '.join(names)})")
    return lo, hi


def run_pipeline(
    cfg: ExperimentConfig,
    *,
    start: str | None = None,
    stop: str | None = None,
    force: Sequence[str] = (),
    pm: CamtrapPluginManager | None = None,
    on_stage: Callable[[StageReport], None] | None = None,
) -> PipelineResult:
    """Run (or skip) each stage from ``start`` to ``stop``; never raises for a stage failure:
    the result carries the first error and the stages after it are ``not run``."""
    lo, hi = check_range(start, stop)
    if lo <= list(STAGE_NAMES).index("train") <= hi:  # before fetching hours of data
        from ct_train.preflight import resolve_plugins

        resolve_plugins(cfg, pm)
    paths = RunPaths.of(cfg)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    state = PipelineState.load(paths.run_dir)
    result = PipelineResult(paths.run_dir, [])
    for i, stage in enumerate(STAGES):
        if result.error is not None or not lo <= i <= hi:
            result.stages.append(StageReport(stage.name, NOT_RUN))
            continue
        if stage.needs_sources and not cfg.sources:
            result.stages.append(
                StageReport(stage.name, NOT_NEEDED, note="no sources in the config")
            )
            continue
        report = run_stage(stage, Context(cfg, paths, pm), state, force=stage.name in force)
        result.stages.append(report)
        if on_stage is not None:
            on_stage(report)
        if report.status == FAILED:
            result.error = f"stage {stage.name} failed: {report.note}"
    return result


def run_stage(
    stage: Stage, ctx: Context, state: PipelineState, *, force: bool = False
) -> StageReport:
    """Run one stage unless it is up to date; record what it saw and wrote."""
    t0 = time.perf_counter()
    try:
        inputs = stage.inputs(ctx)
        missing = [p for p in inputs if not p.exists()]
        if missing:
            raise CamtrapError(
                f"input {missing[0]} is missing — run the earlier stages (ct-train run without --from)"
            )
        conf = config_digest(stage.section(ctx.cfg))
        digests = state.hashes.digests(inputs)
        if not force and state.is_current(stage.name, conf, digests, stage.outputs(ctx)):
            rec = state.stages[stage.name]
            return StageReport(stage.name, SKIPPED, rec.seconds, rec.counts)
        # same inputs and config as an interrupted attempt: the stage may continue it
        attempt = config_digest({"config": conf, "inputs": digests})
        ctx.resume = state.started.get(stage.name) == attempt
        state.started[stage.name] = attempt
        state.stages.pop(stage.name, None)
        state.save()
        outcome: Outcome = stage.run(ctx)
        seconds = time.perf_counter() - t0
        outputs = stage.outputs(ctx)
        state.stages[stage.name] = StageRecord(
            conf, digests, state.hashes.digests(outputs), seconds, outcome.counts
        )
        state.started.pop(stage.name, None)
        state.save()
    except CamtrapError as exc:
        note = redact_text(str(exc))
        return StageReport(stage.name, FAILED, time.perf_counter() - t0, note=note)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug or an unexpected library error: one line, details logged
        log.debug("stage %s failed:\n%s", stage.name, traceback.format_exc())
        _write_traceback(ctx.paths.run_dir, stage.name)
        first = redact_text(str(exc).strip().splitlines()[0]) if str(exc).strip() else ""
        note = f"{type(exc).__name__}: {first} (traceback in {ctx.paths.run_dir / 'pipeline_error.log'})"
        return StageReport(stage.name, FAILED, time.perf_counter() - t0, note=note)
    status = RAN if outcome.needed else NOT_NEEDED
    return StageReport(stage.name, status, seconds, outcome.counts, outcome.note)


def _write_traceback(run_dir: Path, stage: str) -> None:
    from ct_io.atomic import write_text_atomic

    text = redact_text(f"stage {stage}\n{traceback.format_exc()}")
    write_text_atomic(run_dir / "pipeline_error.log", text)
