from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ct_io.errors import CamtrapError
from ct_splits.counts import count_units
from ct_splits.optimize import local_search
from ct_splits.scoring import TEST, TRAIN, VAL, Scorer, ScoreWeights, Targets
from ct_splits.smallest_first import load_prioritize, smallest_first


@pytest.mark.parametrize("distribution", [0.0, 2.0])
def test_local_search_reaches_a_true_local_optimum(distribution: float) -> None:
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 5, (25, 5))
    crops[0] += 1
    scorer = Scorer(
        crops,
        (crops > 0).astype(int),
        Targets.from_fractions(0.2, 0.2),
        ScoreWeights(distribution=distribution),
    )
    start = rng.integers(0, 3, 25).astype(np.int8)
    res = local_search(scorer, start, seed=1)
    assert res.score < scorer.score(start)
    assert res.score == pytest.approx(scorer.score(res.assign))
    # brute force: no single move and no swap improves it
    for u in range(25):
        for b in range(3):
            moved = res.assign.copy()
            moved[u] = b
            assert scorer.score(moved) >= res.score - 1e-12
            for v in np.flatnonzero(res.assign == b):
                swapped = res.assign.copy()
                swapped[u], swapped[v] = b, res.assign[u]
                assert scorer.score(swapped) >= res.score - 1e-12


def test_local_search_leaves_other_splits_alone() -> None:
    crops = np.arange(1, 21).reshape(10, 2)
    scorer = Scorer(crops, np.ones_like(crops), Targets.from_fractions(0.5, 0.0))
    start = np.array([0, 0, 0, 0, 0, 0, 0, 0, 2, 2], dtype=np.int8)
    res = local_search(scorer, start, splits=(TRAIN, VAL))
    assert (res.assign[8:] == TEST).all()
    assert (res.assign[:8] != TEST).all()
    assert (res.assign == VAL).any()


def _frame(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    out = []
    for ds, loc, label, n in rows:
        out += [
            {"path": f"{ds}{loc}{label}{i}", "dataset": ds, "location": loc, "label": label}
            for i in range(n)
        ]
    return pd.DataFrame(out)


def test_smallest_first_follows_the_spec() -> None:
    # rare: 4 locations of sizes 1, 2, 3, 4 (10 crops); common: 6 locations, 100 crops
    frame = _frame(
        [
            ("d", "r1", "rare", 1),
            ("d", "r2", "rare", 2),
            ("d", "r3", "rare", 3),
            ("d", "r4", "rare", 4),
        ]
        + [("d", f"c{i}", "common", 10 + 2 * i) for i in range(5)]
        + [("d", "c5", "common", 100 - sum(10 + 2 * i for i in range(5)))]
    )
    counts = count_units(frame, ("location",))
    assign = smallest_first(counts, Targets.from_fractions(0.2, 0.2))
    where = {counts.units.keys[u]: int(s) for u, s in enumerate(assign)}
    # rare first, smallest location first: r1 → test (0 < 2), r2 → test (1 < 2), r3 → val (0 < 2), r4 → train
    assert (where["d/r1"], where["d/r2"], where["d/r3"], where["d/r4"]) == (TEST, TEST, VAL, TRAIN)
    # common: c0 (10) → test, c1 (12) → test (10 < 20), c2 (14) → val, c3 (16) → val (14 < 20), rest train
    assert [where[f"d/c{i}"] for i in range(6)] == [TEST, TEST, VAL, VAL, TRAIN, TRAIN]


def test_smallest_first_prioritizes_datasets_level_by_level() -> None:
    frame = _frame(
        [("a", "1", "x", 1), ("b", "1", "x", 5), ("c", "1", "x", 3), ("a", "2", "x", 10)]
    )
    counts = count_units(frame, ("location",))
    assign = smallest_first(
        counts, Targets.from_fractions(0.2, 0.2), prioritize={"x": [["b"], ["c"]]}
    )
    where = {counts.units.keys[u]: int(s) for u, s in enumerate(assign)}
    # b first (→ test, reaching 5 ≥ 3.8), then c (→ val, reaching 3 < 3.8), then a/1 → val, a/2 → train
    assert (where["b/1"], where["c/1"], where["a/1"], where["a/2"]) == (TEST, VAL, VAL, TRAIN)
    plain = smallest_first(counts, Targets.from_fractions(0.2, 0.2), prioritize=[["b"], ["c"]])
    assert (plain == assign).all()


def test_load_prioritize_accepts_label_spec_mapping_and_list(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {"deer": {"taxa": [], "prioritize": [["idfg_2019"], ["idfg"]]}, "fox": {"max_count": 5}}
        )
    )
    assert load_prioritize(spec) == {"deer": [["idfg_2019"], ["idfg"]]}
    plain = tmp_path / "plain.json"
    plain.write_text('[["a", "b"], ["c"]]')
    assert load_prioritize(plain) == [["a", "b"], ["c"]]
    bad = tmp_path / "bad.json"
    bad.write_text('{"deer": {"prioritize": ["a"]}}')
    with pytest.raises(CamtrapError, match="list of lists"):
        load_prioritize(bad)
