"""Every extension point of the toolkit, in one file: the hooks and the types they name.

A plugin is a module with functions marked ``@ct_io.hookimpl`` whose names match the hooks
below. Each hook receives a ``register`` callback; call it once per thing provided::

    @hookimpl
    def ct_register_losses(register):
        register("poly1", make_poly1_loss, options=Poly1Options, description="Poly-1 loss")

``name`` is what users type (unique per kind across plugins); ``factory`` is called with
the arguments documented on each hook, then the options: an instance of the attrs class
``options`` built from user input (omitted when ``options`` is None); ``description`` is
one line for ``ct-io plugins``. This module imports nothing above it (types of other
packages are named under ``TYPE_CHECKING`` only), so ct-io never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pluggy
from attrs import frozen

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.md import MDImage

hookspec = pluggy.HookspecMarker("camtrap")
hookimpl = pluggy.HookimplMarker("camtrap")

#: What each hook registers, as users read it ("loss" → "ct_register_losses"); filled by
#: the ``@_registers`` marks below, so the hooks are listed once, by their definitions.
KINDS: dict[str, str] = {}


def _registers(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def mark(spec: Callable[..., None]) -> Callable[..., None]:
        KINDS[kind] = spec.__name__
        return hookspec(spec)

    return mark


class Register(Protocol):
    """The callback every ``ct_register_*`` hook receives."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        options: type | None = None,
        description: str = "",
    ) -> None: ...


#: The CCT ``info`` key where a source records its images folder (absolute, or relative to
#: the CCT file's folder) when the images are not beside the file: the ``folder`` source,
#: whose images stay where they were. ``ct-io combine`` reads it.
IMAGES_DIR_KEY = "images_dir"


@frozen
class FetchedDataset:
    """Where a fetched dataset landed: its CCT file, images folder and optional MD JSON."""

    name: str
    cct_path: Path
    images_dir: Path
    detections_path: Path | None = None


class DataSource(Protocol):
    """What a data-source factory returns: something that fetches one dataset to disk."""

    def fetch(self, out_dir: Path, progress: Progress | None = None) -> FetchedDataset:
        """Write the images and a COCO Camera Traps file under ``out_dir``; say where."""
        ...


class Detector(Protocol):
    """What a detector factory returns: MegaDetector-format detections for images."""

    #: Version string used in crop names (``___crop00_<version>.jpg``) and cache keys.
    version: str

    def detect(self, images_dir: Path, files: Sequence[str]) -> Iterator[MDImage]:
        """Yield one MD image entry per file (relative to ``images_dir``), in any order.

        A file that cannot be read yields an entry with ``failure`` set, never an exception.
        Video clips reach a detector as frames: through an optional
        ``detect_frames(frames: Iterable[tuple[str, PIL.Image]]) -> Iterator[MDImage]``
        (name like ``clip.mp4/frame000120.jpg``), else as JPEG files given to ``detect``.
        """
        ...


class ExperimentLogger(Protocol):
    """What a logger factory returns. Subclass it to inherit the progress methods as no-ops."""

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None: ...

    def log_figure(self, tag: str, image: Any, step: int) -> None: ...

    def close(self) -> None: ...

    def start_epoch(self, epoch: int, total_steps: int, done: int = 0) -> None:
        """An epoch of ``total_steps`` steps starts, ``done`` of them already taken (resume)."""
        return None

    def log_step(self, step_in_epoch: int, metrics: Mapping[str, float]) -> None:
        """Live progress: the loss and learning rate every ``train.log_every_steps`` steps."""
        return None

    def end_epoch(self) -> None:
        """The epoch's steps are done (evaluation follows)."""
        return None


@_registers("data source")
def ct_register_data_sources(register: Register) -> None:
    """Register data sources (``ct-io fetch <name>``, ``sources:`` in a training config).

    Factory call: ``factory(options) -> DataSource``.
    """


@_registers("detector")
def ct_register_detectors(register: Register) -> None:
    """Register object detectors used for images without ground-truth boxes.

    Factory call: ``factory(options) -> Detector``.
    """


@_registers("backbone")
def ct_register_backbones(register: Register) -> None:
    """Register classifier backbones (ResNet, EfficientNet, timm, your own).

    Factory call: ``factory(num_classes: int, pretrained: PretrainedSource, options)
    -> ct_infer.backbones.BuiltBackbone`` (a ``torch.nn.Module`` plus its preprocessing:
    input size, mean, std). ``pretrained`` says where starting weights come from: none,
    an earlier bundle of ours, a library hub, or the offline EfficientNet-Lite0 package.
    """


@_registers("loss")
def ct_register_losses(register: Register) -> None:
    """Register training losses.

    Factory call: ``factory(num_classes: int, class_counts: Sequence[int], options)
    -> torch.nn.Module`` taking ``(logits, targets)`` and returning per-example losses
    (``reduction="none"``) so the trainer can apply sample weights.
    """


@_registers("logger")
def ct_register_loggers(register: Register) -> None:
    """Register experiment loggers (console, TensorBoard, Comet...).

    Factory call: ``factory(run_dir: Path, config: dict, options) -> ExperimentLogger``.
    Import heavy or optional libraries inside the factory, never at module import.
    """


@_registers("engine")
def ct_register_engines(register: Register) -> None:
    """Register execution engines for the data-heavy commands (``--engine NAME``).

    Factory call: ``factory(options) -> ct_io.engines.Engine`` (a ``run(steps, shards,
    progress)`` method and a ``name``; see :mod:`ct_io.engines`). The options class should accept
    ``address`` (``--ray-address``: where the cluster is; None = start a local one).
    Import the engine's library (Ray, Dask...) inside the factory, never at module import.
    """
