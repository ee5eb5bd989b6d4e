"""The Poly-1 loss (Leng et al., "PolyLoss", ICLR 2022): cross-entropy + eps * (1 - p_t).

The factory imports torch when called, not when the plugin loads, so listing plugins
(or using this package's data source) never pays for importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs


@attrs.frozen
class Poly1Options:
    """``epsilon`` weighs the extra (1 - p_t) term; 0 gives plain cross-entropy."""

    epsilon: float = 1.0
    label_smoothing: float = attrs.field(
        default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)]
    )


def make_poly1_loss(num_classes: int, class_counts: Sequence[int], options: Poly1Options) -> Any:
    """A ``torch.nn.Module`` mapping ``(logits, targets)`` to per-example losses."""
    import torch
    from torch.nn import functional

    class Poly1Loss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.num_classes = num_classes
            self.epsilon = options.epsilon
            self.label_smoothing = options.label_smoothing

        def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            ce = functional.cross_entropy(
                logits, targets, reduction="none", label_smoothing=self.label_smoothing
            )
            p_t = logits.softmax(dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
            return ce + self.epsilon * (1.0 - p_t)

    return Poly1Loss()
