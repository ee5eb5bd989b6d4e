"""Every extension point of the toolkit, in one file.

A plugin is a module (usually a tiny package) with functions marked ``@ct_io.hookimpl``
whose names match the hooks below. Each hook receives a ``register`` callback; call it
once per thing the plugin provides::

    from ct_io import hookimpl

    @hookimpl
    def ct_register_losses(register):
        register("poly1", make_poly1_loss, options=Poly1Options, description="Poly-1 loss")

``register(name, factory, *, options=None, description="")``:

- ``name``: the name users type (``--loss poly1``, ``backbone: poly1`` in a config).
  Names are unique per kind across all plugins; a duplicate fails naming both plugins.
- ``factory``: what the host calls to make the thing; its call signature per kind is
  documented on each hook.
- ``options``: an attrs class describing the factory's options. The host builds it from
  user input with cattrs (unknown keys rejected, one error line per problem), and passes
  the instance to the factory. ``None`` when the thing takes no options.
- ``description``: one line shown by ``ct-io plugins``.

Types named under ``TYPE_CHECKING`` are never imported at run time, so ct-io does not
import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.md import MDImage
    from ct_io.sources.base import FetchedDataset

hookspec = pluggy.HookspecMarker("camtrap")


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
    """What a logger factory returns: receives metrics and images during training."""

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None: ...

    def log_figure(self, tag: str, image: Any, step: int) -> None: ...

    def close(self) -> None: ...


@hookspec
def ct_register_data_sources(register: Register) -> None:
    """Register data sources (``ct-io fetch <name>``, ``sources:`` in a training config).

    Factory call: ``factory(options) -> DataSource`` (``factory()`` when ``options=None``).
    """


@hookspec
def ct_register_detectors(register: Register) -> None:
    """Register object detectors used for images without ground-truth boxes.

    Factory call: ``factory(options) -> Detector``.
    """


@hookspec
def ct_register_backbones(register: Register) -> None:
    """Register classifier backbones (ResNet, EfficientNet, timm, your own).

    Factory call: ``factory(num_classes: int, pretrained: PretrainedSource, options)
    -> ct_infer.backbones.BuiltBackbone`` (a ``torch.nn.Module`` plus its preprocessing:
    input size, mean, std). ``pretrained`` says where starting weights come from: none,
    an earlier bundle of ours, a library hub, or the offline EfficientNet-Lite0 package.
    """


@hookspec
def ct_register_losses(register: Register) -> None:
    """Register training losses.

    Factory call: ``factory(num_classes: int, class_counts: Sequence[int], options)
    -> torch.nn.Module`` taking ``(logits, targets)`` and returning per-example losses
    (``reduction="none"``) so the trainer can apply sample weights.
    """


@hookspec
def ct_register_loggers(register: Register) -> None:
    """Register experiment loggers (console, TensorBoard, Comet...).

    Factory call: ``factory(run_dir: Path, config: dict, options) -> ExperimentLogger``.
    Import heavy or optional libraries inside the factory, never at module import.
    """


#: Every hook, for documentation checks and ``ct-io plugins``.
ALL_HOOKS: Sequence[str] = (
    "ct_register_data_sources",
    "ct_register_detectors",
    "ct_register_backbones",
    "ct_register_losses",
    "ct_register_loggers",
)
