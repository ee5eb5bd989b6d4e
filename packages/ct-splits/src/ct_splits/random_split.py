"""The ``random`` method: many random location splits, keep the best-scoring one.

Each trial draws, as the reference does, ``n_train = int(U · (t_train + u₁))`` and
``n_val = int(U · (t_val + u₂))`` with ``u ~ U(−0.03, 0.03)`` (``n_val = U − n_train``
when there is no test target), orders the units at random and cuts the order into train,
val and test. Trials are generated and scored in blocks: one block is a ``(T, U)`` array
of assignments scored with two matrix products, not a pandas loop per trial.

The random streams depend only on the seed and the number of units, so the same seed on
the same table gives the same split on any machine, whatever the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from attrs import define
from threadpoolctl import threadpool_limits

from ct_splits.scoring import TEST, TRAIN, VAL, Scorer

JITTER = 0.03
DEFAULT_TRIALS = 10_000


@define(frozen=True)
class SearchResult:
    """Best assignment found (unit → 0 train, 1 val, 2 test) and its score."""

    assign: np.ndarray
    score: float
    trials: int


def block_size(n_units: int) -> int:
    """Trials per block: about 1 M assignment cells, at most 1024 (depends on the data only),
    so there are enough blocks to keep every core busy."""
    return int(max(1, min(1024, (1 << 20) // max(1, n_units))))


def draw_trials(
    rng: np.random.Generator, n_trials: int, n_units: int, targets: np.ndarray
) -> np.ndarray:
    """``(n_trials, n_units)`` random assignments drawn the reference way."""
    n_train = np.floor(n_units * (targets[TRAIN] + rng.uniform(-JITTER, JITTER, n_trials))).astype(
        np.int64
    )
    n_train = np.clip(n_train, 0, n_units)
    if targets[TEST] > 0:
        n_val = np.floor(n_units * (targets[VAL] + rng.uniform(-JITTER, JITTER, n_trials))).astype(
            np.int64
        )
        n_val = np.clip(n_val, 0, n_units - n_train)
    else:
        n_val = n_units - n_train
    # Random 32-bit keys, cut at each trial's n_train-th and (n_train + n_val)-th smallest:
    # the same as cutting a uniformly random permutation (a tie exactly at a cut, about
    # one in four million trials, moves one unit across it), at half the cost of shuffling.
    keys = rng.integers(0, 2**32, (n_trials, n_units), dtype=np.uint32)
    ordered = np.sort(keys, axis=1)
    rows = np.arange(n_trials)
    assign = np.zeros((n_trials, n_units), dtype=np.int8)
    for cut in (n_train, n_train + n_val):
        beyond = keys > ordered[rows, np.maximum(cut - 1, 0)][:, None]
        beyond[cut == 0] = True
        assign += beyond
    return assign


def random_search(
    scorer: Scorer,
    n_trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> SearchResult:
    """Score ``n_trials`` random splits and return the best (the first one on ties).

    Trials come in blocks, each with its own random stream spawned from ``seed``, and
    blocks run on ``workers`` threads (default: the CPU count; numpy releases the GIL
    while sorting and multiplying), so the result depends on the seed only.
    """
    n_units = scorer.X.shape[0]
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    targets = scorer.targets.as_array()
    block = block_size(n_units)
    sizes = [min(block, n_trials - start) for start in range(0, n_trials, block)]
    streams = np.random.SeedSequence(seed).spawn(len(sizes))

    def run_block(i: int) -> tuple[float, np.ndarray]:
        assign = draw_trials(np.random.default_rng(streams[i]), sizes[i], n_units, targets)
        scores = scorer.score_batch(assign)
        j = int(np.argmin(scores))
        return float(scores[j]), assign[j].copy()

    best_score, best = np.inf, None
    workers = workers or os.cpu_count() or 1
    # one BLAS thread per block: the blocks already keep every core busy
    with threadpool_limits(limits=1 if workers > 1 else None), ThreadPoolExecutor(workers) as pool:
        for (score, assign), size in zip(
            pool.map(run_block, range(len(sizes))), sizes, strict=True
        ):
            if score < best_score:
                best_score, best = score, assign
            if progress:
                progress(size)
    assert best is not None
    return SearchResult(assign=best, score=scorer.score(best), trials=n_trials)
