"""The split score (lower is better), as the reference tools define it.

For each split ``s`` with target fraction ``t_s`` and each label ``l``::

    2 · (crops_s[l] / crops[l] − t_s)²  +  (locations_s[l] / locations[l] − t_s)²

summed over splits and labels, so every label counts the same whatever its size
(MegaDetector's ``create_splits_random``). animl-ml adds, for val and test, how far the
split's class distribution is from the whole dataset's::

    2 · Σ_l (crops_s[l] / crops_s − crops[l] / crops)²

(``ScoreWeights.distribution``; 0 leaves it out). The crop and location terms are
quadratic in the assignment, which the optimizer uses to evaluate every move at once.
"""

from __future__ import annotations

import numpy as np
from attrs import define, field

from ct_io.errors import CamtrapError
from ct_io.tables import SPLIT_NAMES

TRAIN, VAL, TEST = 0, 1, 2


def _check_frac(_: object, attribute: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise CamtrapError(
            f"{getattr(attribute, 'name', 'fraction')} must be between 0 and 1, got {value}"
        )


@define(frozen=True)
class Targets:
    """Target fraction of each split; they add up to 1."""

    train: float = field(validator=_check_frac)
    val: float = field(validator=_check_frac)
    test: float = field(validator=_check_frac)

    @classmethod
    def from_fractions(cls, val: float, test: float) -> Targets:
        """Train gets what val and test leave."""
        if val < 0 or test < 0 or val + test > 1 + 1e-9:
            raise CamtrapError(
                f"--val-frac {val} and --test-frac {test} must be ≥ 0 and add up to at most 1"
            )
        return cls(train=max(0.0, 1.0 - val - test), val=val, test=test)

    def as_array(self) -> np.ndarray:
        return np.array([self.train, self.val, self.test], dtype=np.float64)


@define(frozen=True)
class ScoreWeights:
    """Weights of the three terms: the reference uses 2, 1 and (animl-ml) 2."""

    crops: float = 2.0
    locations: float = 1.0
    distribution: float = 0.0


class Scorer:
    """Scores assignments of units to splits for one count matrix.

    The matrix ``X = [crops | locs]`` (units × 2·labels) turns a split into the sum of its
    rows, so a batch of assignments is scored with two matrix products.
    """

    def __init__(
        self,
        crops: np.ndarray,
        locs: np.ndarray,
        targets: Targets,
        weights: ScoreWeights | None = None,
    ) -> None:
        self.weights = weights or ScoreWeights()
        self.targets = targets
        self.n_labels = crops.shape[1]
        self.X = np.hstack([crops, locs]).astype(np.float64)
        totals = self.X.sum(axis=0)
        if crops.shape[0] and (totals == 0).any():
            raise CamtrapError("every label needs at least one crop to be scored")
        totals = np.where(totals == 0, 1.0, totals)
        nl = self.n_labels
        #: per-column weight of the quadratic term: w / total²
        self.wv = (
            np.concatenate([np.full(nl, self.weights.crops), np.full(nl, self.weights.locations)])
            / totals**2
        )
        #: per split, the target counts t_s · total
        self.tau = targets.as_array()[:, None] * totals[None, :]
        crop_totals = totals[:nl]
        self.overall_dist = crop_totals / crop_totals.sum()
        # integer sums below 2**24 are exact in float32, the fast BLAS path
        self._x_blas = self.X.astype(np.float32) if self.X.sum() < 2**24 else self.X
        self._x_total = self.X.sum(axis=0)
        #: splits with a distribution term (val and test when they have a target)
        self.dist_splits = [
            s for s in (VAL, TEST) if self.weights.distribution and targets.as_array()[s] > 0
        ]

    # ------------------------------------------------------------ totals → score

    def totals(self, assign: np.ndarray) -> np.ndarray:
        """Split sums ``(3, 2L)`` of one assignment (unit → 0/1/2)."""
        out = np.zeros((3, self.X.shape[1]))
        np.add.at(out, assign, self.X)
        return out

    def score_totals(self, totals: np.ndarray) -> np.ndarray:
        """Score of split sums shaped ``(..., 3, 2L)`` → ``(...)``."""
        r = totals - self.tau
        np.square(r, out=r)
        score = (r @ self.wv).sum(axis=-1)
        for s in self.dist_splits:
            score = score + self.distribution_term(totals[..., s, : self.n_labels])
        return score

    def distribution_term(self, crops: np.ndarray) -> np.ndarray:
        """animl-ml's term for split crop counts ``(..., L)``; an empty split has distribution 0."""
        size = crops.sum(axis=-1, keepdims=True)
        dist = np.divide(crops, size, out=np.zeros_like(crops, dtype=np.float64), where=size > 0)
        return self.weights.distribution * ((dist - self.overall_dist) ** 2).sum(axis=-1)

    def score(self, assign: np.ndarray) -> float:
        """Score of one assignment."""
        return float(self.score_totals(self.totals(assign)))

    def score_batch(self, assign: np.ndarray) -> np.ndarray:
        """Scores of a batch of assignments ``(T, U)`` with one matrix product per split."""
        xs = self._x_blas
        totals = np.empty((assign.shape[0], 3, xs.shape[1]))
        totals[:, TRAIN] = (assign == TRAIN).astype(xs.dtype) @ xs
        totals[:, VAL] = (assign == VAL).astype(xs.dtype) @ xs
        totals[:, TEST] = self._x_total - totals[:, TRAIN] - totals[:, VAL]
        return self.score_totals(totals)

    def per_label(self, assign: np.ndarray) -> dict[str, np.ndarray]:
        """Crop and location fractions per split and label, for reports: ``(3, L)`` each."""
        t = self.totals(assign)
        totals = self.X.sum(axis=0)
        nl = self.n_labels
        return {"crop_frac": t[:, :nl] / totals[:nl], "loc_frac": t[:, nl:] / totals[nl:]}


__all__ = ["SPLIT_NAMES", "TEST", "TRAIN", "VAL", "ScoreWeights", "Scorer", "Targets"]
