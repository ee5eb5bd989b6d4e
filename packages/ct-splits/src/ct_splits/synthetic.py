"""Synthetic dataset tables for tests, demos and benchmarks (no files needed).

Camera-trap data are skewed: a few common species at most locations, many rare ones at
a handful, and locations of very different sizes. The generator draws exactly that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_table(
    n_locations: int = 40,
    n_labels: int = 5,
    n_crops: int = 2_000,
    *,
    seed: int = 0,
    datasets: int = 2,
) -> pd.DataFrame:
    """A ``classification_ds.csv``-shaped table with every label at ≥ 1 location."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_labels + 1) ** 0.8  # Zipf-like label frequencies
    reach = np.clip(
        0.6 * popularity / popularity.max(), 3.0 / n_locations, 1.0
    )  # share of locations holding the label
    present = rng.random((n_locations, n_labels)) < reach[None, :]
    for label in np.flatnonzero(~present.any(axis=0)):
        present[rng.integers(n_locations), label] = True
    empty = ~present.any(axis=1)
    present[empty, rng.integers(n_labels, size=int(empty.sum()))] = True
    weight = present * rng.gamma(0.7, 1.0, (n_locations, n_labels)) * popularity[None, :]
    loc_size = rng.lognormal(0.0, 1.0, n_locations)
    prob = (weight / weight.sum(axis=1, keepdims=True)) * (loc_size / loc_size.sum())[:, None]
    counts = rng.multinomial(n_crops, prob.ravel()).reshape(n_locations, n_labels)
    counts[present & (counts == 0)] = 1  # a label present somewhere has a crop there
    loc_idx, label_idx = np.nonzero(counts)
    reps = counts[loc_idx, label_idx]
    loc = np.repeat(loc_idx, reps)
    lab = np.repeat(label_idx, reps)
    n = len(loc)
    ds = loc % datasets
    labels = np.array([f"label_{i:03d}" for i in range(n_labels)])
    frame = pd.DataFrame(
        {
            "path": [
                f"ds{d}/loc{l_:04d}/img{i:07d}.jpg___crop00.jpg"
                for i, (d, l_) in enumerate(zip(ds, loc, strict=True))
            ],
            "dataset": np.char.add("ds", ds.astype(str)),
            "location": np.char.add("loc", np.char.zfill(loc.astype(str), 4)),
            "dataset_class": labels[lab],
            "confidence": np.ones(n),
            "label": labels[lab],
        }
    )
    return frame
