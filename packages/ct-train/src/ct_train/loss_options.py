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
    base: Literal["cross_entropy", "focal"] = "cross_entropy"
    gamma: float = 2.0  # when base is focal
