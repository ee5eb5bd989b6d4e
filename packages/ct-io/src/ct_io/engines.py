"""Execution engines: who runs the data-heavy jobs (crop, detect, classify, run).

A command describes its work once, engine-neutral: :class:`Shard` s (a stable key and a
tuple of picklable items each) and :class:`JobSteps` (``prepare`` a shard on a CPU,
optionally pass it through a ``model`` built once per worker, ``write`` the shard's
output file). An engine (``ct_register_engines``; see :class:`ct_io.hookspecs.Engine`)
runs every shard whose output file is missing and says how it went; the command then
merges the shard files into the outputs it always writes. A rerun skips finished shards.

``local`` (the default) runs the command's own single-machine code path when the command
gives one (``JobSteps.local``), so it stays exactly as fast as before; otherwise it runs the
shards in this process. ``ray`` (:mod:`ct_io.engine_ray`) runs them on a Ray cluster.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from attrs import define, field, frozen

from ct_io.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.plugins import CamtrapPluginManager

#: Engine names the CLIs offer in their help (any registered engine is accepted).
DEFAULT_ENGINE = "local"
SHARD_SUFFIX = ".shard.pkl"


@frozen
class Shard:
    """A unit of work: ``items`` (picklable) under a ``key`` naming its output file."""

    key: str
    items: tuple[Any, ...]


@frozen
class JobSteps:
    """What a job does to a shard, in the order an engine applies it.

    ``prepare(items) -> payload`` (CPU task: read, decode, crop); ``model`` (optional) is a
    factory called once per worker that returns ``apply(payload) -> result`` (a detector or
    classifier; on a GPU when the engine has one); ``write(path, result)`` writes the
    shard's output atomically (without a model, the result is the payload). Every callable
    must pickle (module-level functions, ``functools.partial`` of them, attrs instances).
    """

    kind: str  #: crop, detect, classify or run (what progress and errors name)
    shard_dir: Path
    prepare: Callable[[tuple[Any, ...]], Any]
    write: Callable[[Path, Any], None] = field(factory=lambda: write_pickle)
    model: Callable[[], Callable[[Any], Any]] | None = None
    #: The command's own single-machine code path (``local`` runs it instead of shards).
    local: Callable[[Progress | None], Any] | None = None
    #: What progress counts (``images``, ``crops``): the items of a shard.
    unit: str = "images"

    def shard_path(self, key: str) -> Path:
        return self.shard_dir / f"{key}{SHARD_SUFFIX}"

    def pending(self, shards: Iterable[Shard]) -> list[Shard]:
        """The shards whose output file is not there yet."""
        return [s for s in shards if not self.shard_path(s.key).exists()]

    def run_shard(self, shard: Shard, apply: Callable[[Any], Any] | None = None) -> int:
        """Prepare, apply and write one shard here; returns its number of items."""
        payload = self.prepare(shard.items)
        self.write(self.shard_path(shard.key), apply(payload) if apply else payload)
        return len(shard.items)


@define
class EngineReport:
    """How a job went: shards run now and skipped (already written), or the local result."""

    engine: str
    shards: int = 0
    skipped: int = 0
    #: What ``JobSteps.local`` returned, when the engine ran the command's own path.
    local_result: Any = None
    ran_local: bool = False


@frozen
class EngineOptions:
    """Options every built-in engine takes (``--ray-address``, worker count)."""

    address: str | None = field(
        default=None,
        metadata={
            "help": "Ray cluster to join: host:port, ray://host:10001, or auto (the cluster "
            "this machine belongs to). Default: start a local cluster for this run."
        },
    )
    workers: int = field(
        default=0,
        metadata={
            "help": "With a local cluster: CPUs it may use (0 = all). With --engine local: "
            "ignored (the command's --workers applies)."
        },
    )
    object_store_mb: int = field(
        default=0,
        metadata={"help": "With a local cluster: object store size in MB (0 = Ray's default)."},
    )


class Engine(Protocol):
    """What an engine factory returns: runs a sharded job (crop, detect, classify, run).

    A command turns its work into :class:`Shard` s (picklable items, a stable
    key each) and :class:`JobSteps`: ``prepare`` (CPU work on one shard: read,
    decode, crop), an optional ``model`` (built once per worker, applied to prepared
    shards: a detector or classifier) and ``write`` (the shard's output file). The engine
    runs every shard whose output is missing, anywhere it likes, and reports progress;
    the command then merges the shard files into its usual outputs. ``local`` runs the
    command's own in-process code path instead (``JobSteps.local``), so it stays as fast as
    before.
    """

    name: str

    def run(
        self,
        steps: JobSteps,
        shards: Sequence[Shard],
        progress: Progress | None = None,
    ) -> EngineReport: ...


@frozen
class EngineChoice:
    """The engine options of a command line (``--engine``, ``--ray-address``, ``--shard-size``)
    and of a training config's crop stage."""

    engine: str = field(
        default=DEFAULT_ENGINE,
        metadata={
            "help": "Who runs the work: local (this machine's processes) or ray (a Ray "
            "cluster; pip install 'ct-crop[ray]'), or an engine plugin (`ct-io plugins`)."
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "With --engine ray: the cluster to join (host:port, ray://host:10001, or "
            "auto for the one `ray start` made here). Default: start a local cluster."
        },
    )
    shard_size: int = field(
        default=0,
        metadata={
            "help": "With a distributed engine: items per shard (the unit of work, retry and "
            "resume). 0 = the command's default."
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.shard_size < 0:
            from ct_io.errors import CamtrapError

            raise CamtrapError(f"--shard-size must be >= 0, got {self.shard_size}")

    def build(self, workers: int = 0, pm: CamtrapPluginManager | None = None) -> Engine:
        """The chosen engine (a local cluster gets ``workers`` CPUs; 0 = all). ``local`` is
        built here, without the registry, so the default needs no plugin machinery."""
        if self.engine == DEFAULT_ENGINE:
            return LocalEngine(EngineOptions(workers=workers))
        return get_engine(self.engine, EngineOptions(address=self.ray_address, workers=workers), pm)

    def shards(self, items: Sequence[Any], default: int, salt: str = "") -> list[Shard]:
        """``items`` in shards of ``shard_size`` (or ``default``)."""
        return make_shards(items, self.shard_size or default, salt)


def make_shards(items: Sequence[Any], size: int, salt: str = "") -> list[Shard]:
    """Split ``items`` into shards of ``size``; a key is the shard's number plus a hash of
    its items, so a rerun over the same items finds the same keys (and its finished files)."""
    size = max(1, size)
    shards = []
    for number, start in enumerate(range(0, len(items), size)):
        chunk = tuple(items[start : start + size])
        digest = hashlib.sha1((salt + repr(chunk)).encode("utf-8")).hexdigest()[:12]
        shards.append(Shard(f"{number:06d}-{digest}", chunk))
    return shards


def write_pickle(path: Path, result: Any) -> None:
    """The default shard writer: the result, pickled, written atomically."""
    write_bytes_atomic(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def read_shards(steps: JobSteps, shards: Iterable[Shard]) -> Iterator[tuple[Shard, Any]]:
    """Each shard's written result, in shard order (for the command's merge)."""
    for shard in shards:
        with steps.shard_path(shard.key).open("rb") as fh:
            yield shard, pickle.load(fh)


def get_engine(
    name: str = DEFAULT_ENGINE,
    options: EngineOptions | dict[str, Any] | None = None,
    pm: CamtrapPluginManager | None = None,
) -> Engine:
    """The engine plugin called ``name`` (``ct-io plugins`` lists them), built with options."""
    import attrs

    from ct_io.plugins import collect

    raw = attrs.asdict(options) if isinstance(options, EngineOptions) else dict(options or {})
    reg = collect("engine", pm).get(name)
    if reg.options is None:
        engine: Engine = reg.create()
        return engine
    known = {f.name for f in attrs.fields(reg.options)}
    engine = reg.create(options={k: v for k, v in raw.items() if k in known and v not in (None, 0)})
    return engine


class LocalEngine:
    """This machine: the command's own code path, or the shards one after another here."""

    name = "local"

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    def run(
        self, steps: JobSteps, shards: Sequence[Shard], progress: Progress | None = None
    ) -> EngineReport:
        if steps.local is not None:
            result = steps.local(progress)
            return EngineReport(self.name, local_result=result, ran_local=True)
        pending = steps.pending(shards)
        report = EngineReport(self.name, shards=len(pending), skipped=len(shards) - len(pending))
        apply = steps.model() if steps.model is not None and pending else None
        task = (
            progress.add_task(steps.kind, total=sum(len(s.items) for s in pending))
            if progress is not None
            else None
        )
        for shard in pending:
            done = steps.run_shard(shard, apply)
            if progress is not None and task is not None:
                progress.advance(task, done)
        return report
