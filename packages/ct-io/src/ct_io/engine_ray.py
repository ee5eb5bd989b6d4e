"""The ``ray`` engine: a job's shards as a Ray Data pipeline, on a local or remote cluster.

One dataset row per pending shard (its key and pickled items) → ``prepare`` as CPU tasks
(read, decode, crop: one CPU each) → the model in an actor pool (one actor per GPU when
the cluster has GPUs, else CPU actors with half a CPU each, so the pool never takes the
CPUs the prepare tasks need) → each shard's output file written where it was made. The
driver only sees one small row per finished shard (its key and item count) for progress;
Ray retries the tasks and restarts the actors of a worker that dies, and a shard's file
appears atomically, so a killed run leaves whole shards and a rerun skips them.

Ray (``pip install 'ct-crop[ray]'`` or ``'ct-infer[ray]'``) is imported only here, when a
job runs.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from ct_io.engines import EngineOptions, EngineReport, JobSteps, Shard
from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

#: Actor CPUs: a fraction, so a pool of CPU actors leaves CPUs to the prepare tasks.
ACTOR_CPUS = 0.5
#: Default object store of a local cluster (bytes): small, shards are written by workers.
LOCAL_OBJECT_STORE = 256 * 1024**2


def _import_ray() -> Any:
    # Ray Data logs its own progress and notices to the terminal: ours is the rich bar
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    try:
        import ray
    except ImportError:
        raise CamtrapError(
            "--engine ray needs Ray: pip install 'ct-crop[ray]' (or 'ct-infer[ray]')"
        ) from None
    return ray


class RayEngine:
    """Runs shards on a Ray cluster (joined at ``address``, or a local one started here)."""

    name = "ray"

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    def connect(self) -> Any:
        """Ray, initialised: an existing connection, the given cluster, or a local one."""
        ray = _import_ray()
        if ray.is_initialized():
            return ray
        opts = self.options
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if opts.address:
            kwargs["address"] = opts.address
        else:
            kwargs["num_cpus"] = opts.workers or os.cpu_count() or 1
            kwargs["object_store_memory"] = (
                opts.object_store_mb * 1024**2 if opts.object_store_mb else LOCAL_OBJECT_STORE
            )
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = opts.address or "a local cluster"
            raise CamtrapError(
                f"could not start Ray on {where}: {exc} — check --ray-address (auto joins the "
                "cluster of `ray start`)"
            ) from None
        return ray

    def run(
        self, steps: JobSteps, shards: Sequence[Shard], progress: Progress | None = None
    ) -> EngineReport:
        pending = steps.pending(shards)
        report = EngineReport(self.name, shards=len(pending), skipped=len(shards) - len(pending))
        if not pending:
            return report
        ray = self.connect()
        steps = attrs.evolve(steps, local=None)  # the command's own path stays here
        steps.shard_dir.mkdir(parents=True, exist_ok=True)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        rows = [{"key": s.key, "items": pickle.dumps(s.items)} for s in pending]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        if steps.model is None:
            ds = ds.map(_PrepareAndWrite(steps), num_cpus=1)
        else:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            ds = ds.map(_Prepare(steps), num_cpus=1)
            ds = ds.map_batches(
                _ModelActor,
                fn_constructor_args=(steps,),
                batch_size=1,
                concurrency=gpus or 1,
                num_cpus=ACTOR_CPUS,
                num_gpus=1 if gpus else 0,
            )
        total = sum(len(s.items) for s in pending)
        task = progress.add_task(f"{steps.kind} (ray)", total=total) if progress else None
        for row in ds.iter_rows():
            if progress is not None and task is not None:
                progress.advance(task, int(row["units"]))
        return report


class _PrepareAndWrite:
    """A shard prepared and written in one CPU task (no model)."""

    def __init__(self, steps: JobSteps) -> None:
        self.steps = steps

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        shard = Shard(row["key"], pickle.loads(row["items"]))
        return {"key": shard.key, "units": self.steps.run_shard(shard)}


class _Prepare:
    """A shard prepared in a CPU task; its payload travels pickled to the model actors."""

    def __init__(self, steps: JobSteps) -> None:
        self.steps = steps

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        items = pickle.loads(row["items"])
        payload = self.steps.prepare(items)
        return {"key": row["key"], "units": len(items), "payload": pickle.dumps(payload)}


class _ModelActor:
    """Holds the model (built once per actor) and writes each shard it finishes."""

    def __init__(self, steps: JobSteps) -> None:
        assert steps.model is not None
        self.steps = steps
        self.apply: Callable[[Any], Any] = steps.model()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for key, payload in zip(batch["key"], batch["payload"], strict=True):
            result = self.apply(pickle.loads(payload))
            self.steps.write(self.steps.shard_path(str(key)), result)
        return {"key": batch["key"], "units": batch["units"]}
