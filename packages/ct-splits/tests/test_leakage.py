"""Only a location split measures what a camera-trap classifier does at a new location.

Synthetic crops: each location has its own background (a strong random vector) and is
dominated by one species; the species signal itself is weak. A 1-nearest-neighbour
classifier learns backgrounds, not animals. A per-photo split puts photos of the same
location on both sides, so the test set rewards that memorization; our location split
shares no location between train and test, so its accuracy reflects the weak signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ct_splits.splitting import SplitOptions, make_splits, split_of_rows

N_LOCS, PER_LOC, DIM, N_SPECIES = 60, 30, 16, 4


def _data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    species_sig = rng.normal(0, 1, (N_SPECIES, DIM))
    rows, feats = [], []
    for loc in range(N_LOCS):
        background = rng.normal(0, 4, DIM)
        main = loc % N_SPECIES
        for i in range(PER_LOC):
            sp = main if rng.random() < 0.8 else int(rng.integers(N_SPECIES))
            feats.append(background + 0.3 * species_sig[sp] + rng.normal(0, 0.5, DIM))
            rows.append(
                {"path": f"{loc}/{i}.jpg", "dataset": "d", "location": str(loc), "label": f"s{sp}"}
            )
    return pd.DataFrame(rows).assign(dataset_class="", confidence=1.0), np.array(feats)


def _nn_accuracy(
    feats: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float:
    d = ((feats[test][:, None, :] - feats[train][None, :, :]) ** 2).sum(-1)
    pred = labels[train][d.argmin(axis=1)]
    return float((pred == labels[test]).mean())


def test_per_photo_split_leaks_locations_and_inflates_accuracy() -> None:
    frame, feats = _data()
    labels = frame["label"].to_numpy()
    rng = np.random.default_rng(1)
    per_photo_test = rng.random(len(frame)) < 0.2
    photo_train, photo_test = np.flatnonzero(~per_photo_test), np.flatnonzero(per_photo_test)

    result = make_splits(frame, SplitOptions(val_frac=0.0, test_frac=0.2, trials=500))
    split = split_of_rows(frame, result.splits).to_numpy()
    loc_train, loc_test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")

    locs = frame["location"].to_numpy()
    assert len(set(locs[photo_train]) & set(locs[photo_test])) > 0.9 * len(
        set(locs[photo_test])
    )  # leak
    assert not set(locs[loc_train]) & set(locs[loc_test])  # no leak

    leaky = _nn_accuracy(feats, labels, photo_train, photo_test)
    honest = _nn_accuracy(feats, labels, loc_train, loc_test)
    assert leaky > 0.75  # it recognises the background...
    assert honest < leaky - 0.3  # ...which says nothing about a new location
