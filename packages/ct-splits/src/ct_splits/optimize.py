"""Local search that improves a split under the same score.

Starting from an assignment (usually the best random trial), each pass visits the units
in a seeded random order and applies the best improving action for that unit: move it to
another split, or swap it with one unit of another split. The crop and location terms of
the score are quadratic, so the change of every candidate action is computed exactly with
one matrix-vector product (see ``_swap_deltas``); animl-ml's distribution term is
expanded the same way. Passes repeat until none improves, so the result is a local
optimum that is never worse than the start.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from attrs import define

from ct_splits.scoring import TEST, TRAIN, VAL, Scorer

MAX_PASSES = 50
_TOL = 1e-12


@define(frozen=True)
class OptimizeResult:
    """The improved assignment, its score and what the search did."""

    assign: np.ndarray
    score: float
    start_score: float
    moves: int
    swaps: int
    passes: int


class _DistTerm:
    """animl-ml's distribution term of one split, evaluated for many candidate contents.

    For crop counts ``c`` with size ``S``: ``w·(Σc²/S² − 2·P·c/S + Σ P²)``, so adding the
    crops of unit ``v`` needs only the dot products precomputed here.
    """

    def __init__(self, scorer: Scorer) -> None:
        nl = scorer.n_labels
        self.w = scorer.weights.distribution
        self.P = scorer.overall_dist
        self.PP = float(self.P @ self.P)
        self.C = scorer.X[:, :nl]
        self.size = self.C.sum(axis=1)
        self.sq = (self.C**2).sum(axis=1)
        self.CP = self.C @ self.P

    def value(self, sum_sq: np.ndarray, size: np.ndarray, pc: np.ndarray) -> np.ndarray:
        safe = np.where(size > 0, size, 1.0)
        return np.where(
            size > 0, self.w * (sum_sq / safe**2 - 2 * pc / safe + self.PP), self.w * self.PP
        )

    def of(self, c: np.ndarray) -> float:
        return float(self.value(np.asarray(c @ c), np.asarray(c.sum()), np.asarray(c @ self.P)))

    def with_units(self, base: np.ndarray, sign: int, members: np.ndarray) -> np.ndarray:
        """Term of ``base ± C[v]`` for every ``v`` in ``members``."""
        cross = (self.C @ base)[members]
        return self.value(
            base @ base + 2 * sign * cross + self.sq[members],
            base.sum() + sign * self.size[members],
            base @ self.P + sign * self.CP[members],
        )


def local_search(
    scorer: Scorer,
    assign: np.ndarray,
    *,
    seed: int = 0,
    splits: Sequence[int] = (TRAIN, VAL, TEST),
    max_passes: int = MAX_PASSES,
) -> OptimizeResult:
    """Improve ``assign`` by moving and swapping single units among ``splits``.

    Units outside ``splits`` stay where they are. The result is deterministic for a seed.
    """
    assign = assign.astype(np.int8).copy()
    start = scorer.score(assign)
    xs, wv, tau = scorer.X, scorer.wv, scorer.tau
    xw = xs * wv
    sq = (xs * xw).sum(axis=1)  # Σ_j w_j X_uj²
    dist = _DistTerm(scorer) if scorer.dist_splits else None
    allowed = [s for s in splits]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    moves = swaps = passes = 0
    movable = np.isin(assign, allowed)
    for passes in range(1, max_passes + 1):  # noqa: B007 - reported
        totals = scorer.totals(assign)
        improved = False
        for u in rng.permutation(np.flatnonzero(movable)):
            a = int(assign[u])
            r = totals - tau
            best, action = -_TOL, None
            for b in allowed:
                if b == a:
                    continue
                # move u: a → b
                d = float(xs[u] @ (2 * wv * (r[b] - r[a]))) + 2 * sq[u]
                if dist is not None:
                    d += _dist_move(dist, scorer, totals, u, a, b)
                if d < best:
                    best, action = d, (b, -1)
                # swap u (in a) with v (in b)
                members = np.flatnonzero(assign == b)
                if members.size == 0:
                    continue
                g = wv * (r[a] - r[b])
                ds = (
                    (xs @ (2 * g - 4 * xw[u]))[members]
                    + 2 * sq[members]
                    + (2 * sq[u] - 2 * float(xs[u] @ g))
                )
                if dist is not None:
                    ds = ds + _dist_swap(dist, scorer, totals, u, a, b, members)
                j = int(np.argmin(ds))
                if ds[j] < best:
                    best, action = float(ds[j]), (b, int(members[j]))
            if action is None:
                continue
            b, v = action
            totals[a] -= xs[u]
            totals[b] += xs[u]
            assign[u] = b
            if v >= 0:
                totals[b] -= xs[v]
                totals[a] += xs[v]
                assign[v] = a
                swaps += 1
            else:
                moves += 1
            improved = True
        if not improved:
            break
    final = scorer.score(assign)
    return OptimizeResult(
        assign=assign, score=final, start_score=start, moves=moves, swaps=swaps, passes=passes
    )


def _dist_move(
    dist: _DistTerm, scorer: Scorer, totals: np.ndarray, u: int, a: int, b: int
) -> float:
    nl = scorer.n_labels
    d = 0.0
    cu = dist.C[u]
    for s, sign in ((a, -1), (b, 1)):
        if s in scorer.dist_splits:
            c = totals[s, :nl]
            d += dist.of(c + sign * cu) - dist.of(c)
    return d


def _dist_swap(
    dist: _DistTerm, scorer: Scorer, totals: np.ndarray, u: int, a: int, b: int, members: np.ndarray
) -> np.ndarray:
    nl = scorer.n_labels
    d = np.zeros(members.size)
    cu = dist.C[u]
    if a in scorer.dist_splits:  # a loses u, gains v
        c = totals[a, :nl]
        d += dist.with_units(c - cu, 1, members) - dist.of(c)
    if b in scorer.dist_splits:  # b gains u, loses v
        c = totals[b, :nl]
        d += dist.with_units(c + cu, -1, members) - dist.of(c)
    return d
