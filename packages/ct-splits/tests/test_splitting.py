from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_io.errors import CamtrapError
from ct_io.tables import write_splits
from ct_splits.splitting import SplitOptions, make_splits, split_of_rows

FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """Small dataset tables: a few datasets and locations, optional sequences and cameras."""
    n = draw(st.integers(1, 120))
    ds = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    loc = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    label = draw(st.lists(st.sampled_from(["bear", "deer", "fox", "owl"]), min_size=n, max_size=n))
    seq = draw(st.lists(st.one_of(st.none(), st.integers(0, 25)), min_size=n, max_size=n))
    cam = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "path": [f"p{i}.jpg" for i in range(n)],
            "dataset": ds,
            "location": [str(x) for x in loc],
            "dataset_class": label,
            "confidence": 1.0,
            "label": label,
            "seq_id": pd.array(seq, dtype="Int64").astype(object),
            "camera": [f"cam{c}" for c in cam],
        }
    )


OPTIONS = st.builds(
    SplitOptions,
    method=st.sampled_from(["random", "smallest_first"]),
    val_frac=st.sampled_from([0.1, 0.2, 0.3]),
    test_frac=st.sampled_from([0.0, 0.1, 0.2]),
    trials=st.just(200),
    seed=st.integers(0, 3),
    optimize=st.sampled_from([None, True, False]),
    group_by=st.sampled_from(
        [
            ("location",),
            ("location", "sequence"),
            ("location", "camera"),
            ("location", "sequence", "camera"),
        ]
    ),
)


@FAST
@given(frame=tables(), options=OPTIONS)
def test_splits_are_disjoint_cover_every_location_and_respect_group_keys(
    frame: pd.DataFrame, options: SplitOptions
) -> None:
    result = make_splits(frame, options)
    splits = result.splits.as_dict()
    listed = [loc for locs in splits.values() for loc in locs]
    assert len(listed) == len(set(listed)), "a location is in two splits"
    present = set(zip(frame["dataset"], frame["location"], strict=True))
    assert set(listed) == present, "every location is in exactly one split"
    split = split_of_rows(frame, result.splits)
    assert split.notna().all()
    for key in options.group_by:
        col = {"sequence": "seq_id", "camera": "camera"}.get(key)
        if col is None:
            continue
        rows = frame.assign(split=split)[frame[col].notna()]
        straddle = rows.groupby(["dataset", rows[col].astype(str)])["split"].nunique()
        assert (straddle <= 1).all(), f"a {key} straddles splits"
    if options.test_frac == 0:
        assert not splits["test"]


@FAST
@given(frame=tables(), seed=st.integers(0, 5))
def test_same_seed_gives_byte_identical_splits_json(
    tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame, seed: int
) -> None:
    out = tmp_path_factory.mktemp("det")
    opts = SplitOptions(trials=300, seed=seed)
    write_splits(make_splits(frame, opts).splits, out / "a.json")
    write_splits(make_splits(frame.sample(frac=1.0, random_state=7), opts).splits, out / "b.json")
    assert (out / "a.json").read_bytes() == (out / "b.json").read_bytes()


def test_different_seeds_explore_different_splits() -> None:
    from ct_splits.synthetic import synthetic_table

    frame = synthetic_table(60, 6, 3000, seed=3)
    seen = {
        tuple(make_splits(frame, SplitOptions(trials=50, seed=s, optimize=False)).splits.test)
        for s in range(4)
    }
    assert len(seen) > 1


def test_optimizer_improves_on_best_random_trial() -> None:
    from ct_splits.synthetic import synthetic_table

    frame = synthetic_table(200, 20, 10_000, seed=5)
    result = make_splits(frame, SplitOptions(trials=2000, optimize=True))
    random_stage, local_stage = result.stages
    assert local_stage.score < random_stage.score
    assert result.score == pytest.approx(local_stage.score)


def test_match_test_keeps_earlier_test_locations_and_splits_the_rest(tmp_path: Path) -> None:
    from ct_splits.synthetic import synthetic_table

    frame = synthetic_table(40, 5, 2000, seed=1)
    first = make_splits(frame, SplitOptions(seed=1))
    earlier_test = set(first.splits.test) | {("gone", "somewhere")}
    second = make_splits(
        frame, SplitOptions(seed=9, test_frac=0.0, val_frac=0.25), test_locations=earlier_test
    )
    assert set(second.splits.test) == earlier_test  # kept, including locations no longer present
    assert not set(second.splits.train) & earlier_test
    assert set(second.splits.train) | set(second.splits.val) == set(first.splits.train) | set(
        first.splits.val
    )
    with pytest.raises(CamtrapError, match="match-test"):
        make_splits(frame, SplitOptions(test_frac=0.2), test_locations=earlier_test)


def test_empty_table_and_unknown_method_are_errors() -> None:
    with pytest.raises(CamtrapError, match="no rows"):
        make_splits(pd.DataFrame(columns=["path", "dataset", "location", "label"]))
    frame = pd.DataFrame({"path": ["x"], "dataset": ["d"], "location": ["1"], "label": ["a"]})
    with pytest.raises(CamtrapError, match="unknown split method"):
        make_splits(frame, SplitOptions(method="bogus"))  # type: ignore[arg-type]
    with pytest.raises(CamtrapError, match="no such column"):
        make_splits(frame, SplitOptions(group_by=("location", "camera")))


def test_sequence_without_location_never_straddles() -> None:
    # frames of one sequence: some with location "7", the rest in a per-image pseudo-location
    rows = []
    for seq in range(30):
        for frame_num in range(3):
            loc = str(seq % 10) if frame_num == 0 else f"unknown_location/img:{seq}_{frame_num}"
            rows.append(
                {
                    "path": f"{seq}_{frame_num}.jpg",
                    "dataset": "d",
                    "location": loc,
                    "label": ["a", "b"][seq % 2],
                    "seq_id": seq,
                }
            )
    frame = pd.DataFrame(rows).assign(dataset_class="", confidence=1.0)
    result = make_splits(frame, SplitOptions(trials=500, val_frac=0.3, test_frac=0.3))
    split = split_of_rows(frame, result.splits)
    assert (frame.assign(split=split).groupby("seq_id")["split"].nunique() == 1).all()
    assert len(result.counts.units) == 10  # pseudo-locations joined their sequence's location
    assert np.isin([0, 1, 2], result.assign).all()
