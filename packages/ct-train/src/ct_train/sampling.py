"""Which training examples each epoch draws, in which order — deterministic and resumable.

``label_weighted`` draws every label equally often (with replacement; within a label,
proportionally to the detection-confidence weight when one is set). The seed explains
why sampling beats loss weighting: per-label weights differ by 100× and more, and a
weighted loss then gives a few batches huge gradients. ``shuffle`` is a plain
permutation (or, with detection-confidence weights, a draw proportional to them, as the
reference does).

The sampler yields ``(index, item_seed)``: the dataset seeds each item's augmentation
with ``item_seed``, so an epoch is a pure function of ``(seed, epoch)`` whatever the
number of workers, and resuming mid-epoch reproduces the rest of it exactly.
Under DistributedDataParallel every rank draws the same epoch and takes every
``world_size``-th item, so label weighting holds across ranks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch.utils.data


def sampling_weights(
    targets: np.ndarray, weights: np.ndarray, num_classes: int, method: str
) -> np.ndarray | None:
    """Draw probabilities for the train split (None: a plain permutation).

    ``targets`` are label indices, or for multi-label a (rows, labels) 0/1 matrix: then
    ``label_weighted`` weights each row by its rarest label, so a rare label is drawn as
    often as a common one whatever it shares a crop with."""
    if method == "label_weighted" and targets.ndim == 2:
        per_label = (targets * weights[:, None]).sum(axis=0)
        inverse = np.divide(1.0, per_label, out=np.zeros_like(per_label), where=per_label > 0)
        rarest = (targets * inverse[None, :]).max(axis=1)  # 1 / weight of the row's rarest label
        present = np.count_nonzero(per_label)
        probs = weights * rarest / max(present, 1)
        return probs / probs.sum()
    if method == "label_weighted":
        per_label = np.bincount(targets, weights=weights, minlength=num_classes)
        present = np.count_nonzero(per_label)
        probs = weights / per_label[targets] / present
        return probs / probs.sum()
    if method == "shuffle":
        return None if np.all(weights == weights[0]) else weights / weights.sum()
    raise ValueError(f"unknown sampling method {method!r}")


class EpochSampler(torch.utils.data.Sampler[tuple[int, int]]):
    """Yields ``(index, item_seed)`` pairs; one epoch is ``num_samples`` draws, split over ranks."""

    def __init__(
        self,
        num_items: int,
        probs: np.ndarray | None = None,
        *,
        seed: int = 0,
        num_samples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.num_items = num_items
        self.probs = probs
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        total = num_samples if num_samples is not None else num_items
        self.per_rank = -(-total // world_size)  # ceil: every rank gets as many (wraps around)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Draw epoch ``epoch``'s order, skipping its first ``start`` items of this rank."""
        self.epoch, self.start = epoch, start

    def order(self) -> tuple[np.ndarray, np.ndarray]:
        """This rank's whole epoch: indices and per-item seeds."""
        rng = np.random.Generator(np.random.PCG64([self.seed, self.epoch]))
        total = self.per_rank * self.world_size
        if self.probs is None:
            perm = rng.permutation(self.num_items)
            indices = np.resize(perm, total)  # wraps around when ranks need padding
        else:
            indices = rng.choice(self.num_items, size=total, replace=True, p=self.probs)
        seeds = rng.integers(0, 2**62, size=total)
        return indices[self.rank :: self.world_size], seeds[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices, seeds = self.order()
        for i in range(self.start, len(indices)):
            yield int(indices[i]), int(seeds[i])

    def __len__(self) -> int:
        return self.per_rank - self.start

    def state_dict(self) -> dict[str, Any]:
        """Epoch, position in it and seed: enough to resume mid-epoch."""
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from where ``state_dict`` was taken."""
        self.seed = int(state["seed"])
        self.set_epoch(int(state["epoch"]), int(state["start"]))


class ShardSampler(torch.utils.data.Sampler[int]):
    """Evaluation order: this rank's share of ``range(n)``, in order, without padding."""

    def __init__(self, num_items: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, num_items, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
