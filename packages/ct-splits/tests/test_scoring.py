from __future__ import annotations

import numpy as np
import pytest

from ct_io.errors import CamtrapError
from ct_splits.counts import count_units
from ct_splits.scoring import Scorer, ScoreWeights, Targets
from ct_splits.synthetic import synthetic_table

NAMES = ("train", "val", "test")


@pytest.mark.parametrize("distribution", [0.0, 2.0])
@pytest.mark.parametrize(("val", "test"), [(0.2, 0.2), (0.2, 0.1), (0.3, 0.0)])
def test_score_equals_reference_formula(
    reference_score, distribution: float, val: float, test: float
) -> None:
    df = synthetic_table(30, 6, 800, seed=4)
    counts = count_units(df, ("location",))
    targets = Targets.from_fractions(val, test)
    scorer = Scorer(counts.crops, counts.locs, targets, ScoreWeights(distribution=distribution))
    rng = np.random.default_rng(0)
    for _ in range(5):
        assign = rng.integers(0, 3 if test else 2, counts.n_units).astype(np.int8)
        split_of = {key: NAMES[s] for key, s in zip(counts.units.keys, assign, strict=True)}
        expected = reference_score(
            df, split_of, {"train": targets.train, "val": val, "test": test}, distribution
        )
        assert scorer.score(assign) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_batch_scores_equal_single_scores() -> None:
    df = synthetic_table(50, 8, 3000, seed=2)
    counts = count_units(df, ("location",))
    scorer = Scorer(
        counts.crops, counts.locs, Targets.from_fractions(0.2, 0.2), ScoreWeights(distribution=2.0)
    )
    batch = np.random.default_rng(1).integers(0, 3, (40, counts.n_units)).astype(np.int8)
    np.testing.assert_allclose(
        scorer.score_batch(batch), [scorer.score(a) for a in batch], rtol=1e-12
    )


def test_perfect_split_scores_zero() -> None:
    # two labels, each at 10 identical locations: 6/2/2 locations hits every target exactly
    crops = np.tile(np.array([[3, 1]]), (10, 1))
    scorer = Scorer(crops, (crops > 0).astype(int), Targets.from_fractions(0.2, 0.2))
    assign = np.array([0] * 6 + [1] * 2 + [2] * 2, dtype=np.int8)
    assert scorer.score(assign) == pytest.approx(0.0, abs=1e-15)
    assert scorer.score(np.zeros(10, dtype=np.int8)) > 0


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.2), (0.7, 0.5), (1.5, 0.0)])
def test_bad_fractions_are_one_line_errors(val: float, test: float) -> None:
    with pytest.raises(CamtrapError, match="frac"):
        Targets.from_fractions(val, test)
