"""Split a classification dataset table by location: the one entry point the CLI uses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Literal

import numpy as np
import pandas as pd
from attrs import define, field

from ct_io.errors import CamtrapError
from ct_io.tables import SPLIT_NAMES, Splits
from ct_splits.counts import UnitCounts, count_units
from ct_splits.grouping import DEFAULT_GROUP_BY
from ct_splits.optimize import MAX_PASSES, local_search
from ct_splits.random_split import DEFAULT_TRIALS, random_search
from ct_splits.scoring import TEST, TRAIN, VAL, Scorer, ScoreWeights, Targets
from ct_splits.smallest_first import Prioritize, smallest_first

log = logging.getLogger(__name__)

Method = Literal["random", "smallest_first"]


@define(frozen=True)
class SplitOptions:
    """How to split. ``optimize=None`` means: on for ``random``, off for ``smallest_first``."""

    method: Method = "random"
    val_frac: float = 0.2
    test_frac: float = 0.2
    trials: int = DEFAULT_TRIALS
    seed: int = 0
    optimize: bool | None = None
    weights: ScoreWeights = field(factory=ScoreWeights)
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    site_separator: str = "/"
    prioritize: Prioritize | None = None
    max_passes: int = MAX_PASSES


@define(frozen=True)
class Stage:
    """One step of the search: its name, the score it reached and the seconds it took."""

    name: str
    score: float
    seconds: float


@define
class SplitResult:
    """The splits, the units they were made of, and how the search went."""

    splits: Splits
    counts: UnitCounts
    assign: np.ndarray  # unit → 0 train / 1 val / 2 test
    score: float
    stages: list[Stage]
    scorer: Scorer


def make_splits(
    frame: pd.DataFrame,
    options: SplitOptions | None = None,
    *,
    test_locations: Collection[tuple[str, str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SplitResult:
    """Split the table's locations into train/val/test.

    ``test_locations`` (from an earlier ``splits.json``) fixes the test split: units holding
    any of them are test, and the rest is split into train and val.
    """
    opts = options or SplitOptions()
    if opts.method not in ("random", "smallest_first"):
        raise CamtrapError(
            f"unknown split method {opts.method!r} (choose random or smallest_first)"
        )
    if test_locations is not None and opts.test_frac > 0:
        raise CamtrapError(
            "--match-test fixes the test split; leave --test-frac out (or set it to 0)"
        )
    targets = Targets.from_fractions(opts.val_frac, opts.test_frac)
    counts = count_units(frame, opts.group_by, site_separator=opts.site_separator)
    assign = np.full(counts.n_units, TRAIN, dtype=np.int8)
    fixed = _fixed_test_units(counts, test_locations)
    assign[fixed] = TEST
    pool = counts.subset(~fixed)
    if pool.n_units == 0:
        raise CamtrapError(
            "every location is in the matched test set — nothing left for train and val"
        )
    keep = pool.crops.sum(axis=0) > 0
    if not keep.all():
        gone = [lbl for lbl, k in zip(pool.labels, keep, strict=True) if not k]
        log.warning(
            "%d label(s) occur only at matched test locations: %s", len(gone), ", ".join(gone[:10])
        )
    scorer = Scorer(pool.crops[:, keep], pool.locs[:, keep], targets, opts.weights)
    stages: list[Stage] = []
    t0 = time.perf_counter()
    if opts.method == "random":
        found = random_search(scorer, opts.trials, opts.seed, progress=progress)
        pool_assign = found.assign
        stages.append(
            Stage(f"random ({opts.trials:,} trials)", found.score, time.perf_counter() - t0)
        )
    else:
        pool_counts = UnitCounts(
            units=pool.units,
            labels=[lbl for lbl, k in zip(pool.labels, keep, strict=True) if k],
            crops=pool.crops[:, keep],
            locs=pool.locs[:, keep],
        )
        pool_assign = smallest_first(pool_counts, targets, prioritize=opts.prioritize)
        stages.append(Stage("smallest_first", scorer.score(pool_assign), time.perf_counter() - t0))
    if opts.optimize if opts.optimize is not None else opts.method == "random":
        t1 = time.perf_counter()
        active = [s for s in (TRAIN, VAL, TEST) if s == TRAIN or targets.as_array()[s] > 0]
        better = local_search(
            scorer, pool_assign, seed=opts.seed, splits=active, max_passes=opts.max_passes
        )
        pool_assign = better.assign
        stages.append(
            Stage(
                f"local search ({better.moves} moves, {better.swaps} swaps)",
                better.score,
                time.perf_counter() - t1,
            )
        )
    assign[~fixed] = pool_assign
    splits = to_splits(counts, assign, extra_test=test_locations)
    return SplitResult(
        splits=splits,
        counts=counts,
        assign=assign,
        score=scorer.score(pool_assign),
        stages=stages,
        scorer=scorer,
    )


def _fixed_test_units(
    counts: UnitCounts, test_locations: Collection[tuple[str, str]] | None
) -> np.ndarray:
    fixed = np.zeros(counts.n_units, dtype=bool)
    if not test_locations:
        return fixed
    for loc in test_locations:
        u = counts.units.location_unit.get((str(loc[0]), str(loc[1])))
        if u is not None:
            fixed[u] = True
    wanted = {(str(d), str(lc)) for d, lc in test_locations}
    pulled = sum(
        1 for u in np.flatnonzero(fixed) for loc in counts.units.locations[u] if loc not in wanted
    )
    if pulled:
        log.warning(
            "%d location(s) share a group key with matched test locations and go to test too",
            pulled,
        )
    return fixed


def to_splits(
    counts: UnitCounts, assign: np.ndarray, *, extra_test: Collection[tuple[str, str]] | None = None
) -> Splits:
    """``Splits`` listing every location of every unit under its unit's split."""
    out: dict[str, list[tuple[str, str]]] = {name: [] for name in SPLIT_NAMES}
    for u, s in enumerate(assign):
        out[SPLIT_NAMES[int(s)]].extend(counts.units.locations[u])
    if extra_test:
        present = set(counts.units.location_unit)
        out["test"].extend(
            (str(d), str(lc)) for d, lc in extra_test if (str(d), str(lc)) not in present
        )
    return Splits(train=sorted(out["train"]), val=sorted(out["val"]), test=sorted(set(out["test"])))


def split_of_rows(frame: pd.DataFrame, splits: Splits) -> pd.Series:
    """Split name of each row of a dataset table (NaN where its location is in no split)."""
    lookup = {f"{d}\x1f{loc}": name for (d, loc), name in splits.split_of().items()}
    keys = frame["dataset"].astype(str) + "\x1f" + frame["location"].astype(str)
    return keys.map(lookup).rename("split")


__all__ = [
    "VAL",
    "Method",
    "SplitOptions",
    "SplitResult",
    "Stage",
    "make_splits",
    "split_of_rows",
    "to_splits",
]
