"""Options of the built-in losses (no torch import: plugin listing stays light)."""

from __future__ import annotations

from typing import Literal

from attrs import define


@define
class CrossEntropyOptions:
    """Options of ``cross_entropy``: optional label smoothing."""

    label_smoothing: float = 0.0


@define
class LabelSmoothingOptions:
    """Options of ``label_smoothing``: cross-entropy with smoothing on by default."""

    label_smoothing: float = 0.1


@define
class FocalOptions:
    """Options of ``focal`` (Lin et al. 2017)."""

    gamma: float = 2.0
    #: Optional per-class weights (length = number of labels); None for none.
    alpha: list[float] | None = None


@define
class ClassBalancedOptions:
    """Cui et al. 2019: weight each class by (1 - beta) / (1 - beta^n_c)."""

    beta: float = 0.999
    #: cross_entropy or focal (single-label); bce or sigmoid_focal (multi-label).
    base: Literal["cross_entropy", "focal", "bce", "sigmoid_focal"] = "cross_entropy"
    gamma: float = 2.0  # when base is focal or sigmoid_focal


@define
class BCEOptions:
    """Options of ``bce`` (multi-label): targets smoothed towards 1/2 by ``label_smoothing``."""

    label_smoothing: float = 0.0


@define
class SigmoidFocalOptions:
    """Options of ``sigmoid_focal`` (multi-label; Lin et al. 2017, as torchvision's)."""

    gamma: float = 2.0
    #: Weight of positives (negatives get 1 - alpha); None for none.
    alpha: float | None = 0.25
