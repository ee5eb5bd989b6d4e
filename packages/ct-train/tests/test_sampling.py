from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ct_train.sampling import EpochSampler, sampling_weights


def test_label_weighted_draws_every_label_equally() -> None:
    targets = np.array([0] * 900 + [1] * 90 + [2] * 10)
    probs = sampling_weights(targets, np.ones(len(targets)), 3, "label_weighted")
    sampler = EpochSampler(len(targets), probs, seed=1, num_samples=30000)
    counts = Counter(targets[[i for i, _ in sampler]])
    for label in range(3):
        assert counts[label] / 30000 == pytest.approx(1 / 3, abs=0.02)


def test_label_weighted_with_detection_confidence_prefers_confident_crops() -> None:
    targets = np.array([0, 0, 1, 1])
    conf = np.array([0.9, 0.1, 0.5, 0.5])
    probs = sampling_weights(targets, conf, 2, "label_weighted")
    assert probs is not None
    assert probs.tolist() == pytest.approx([0.45, 0.05, 0.25, 0.25])


def test_shuffle_is_a_permutation_and_seeded() -> None:
    a = EpochSampler(50, None, seed=3)
    a.set_epoch(2)
    order = [i for i, _ in a]
    assert sorted(order) == list(range(50))
    b = EpochSampler(50, None, seed=3)
    b.set_epoch(2)
    assert [i for i, _ in b] == order
    b.set_epoch(3)
    assert [i for i, _ in b] != order


def test_resume_position_continues_the_same_epoch() -> None:
    full = EpochSampler(40, None, seed=0)
    full.set_epoch(1)
    items = list(full)
    part = EpochSampler(40, None, seed=0)
    part.load_state_dict({"epoch": 1, "start": 16, "seed": 0})
    assert list(part) == items[16:] and len(part) == 24


def test_distributed_shards_partition_one_label_weighted_epoch() -> None:
    targets = np.array([0] * 80 + [1] * 20)
    probs = sampling_weights(targets, np.ones(100), 2, "label_weighted")
    ranks = [EpochSampler(100, probs, seed=5, rank=r, world_size=2) for r in range(2)]
    single = EpochSampler(100, probs, seed=5, num_samples=100)
    for s in [*ranks, single]:
        s.set_epoch(0)
    merged = [None] * 100
    merged[0::2], merged[1::2] = list(ranks[0]), list(ranks[1])
    assert merged == list(single)  # the ranks share one epoch, each takes every 2nd item
    counts = Counter(targets[[i for r in ranks for i, _ in r]])
    assert abs(counts[0] - counts[1]) < 30  # still balanced across ranks


def test_shuffle_with_confidence_weights_draws_proportionally() -> None:
    probs = sampling_weights(np.array([0, 1]), np.array([3.0, 1.0]), 2, "shuffle")
    assert probs is not None and probs.tolist() == [0.75, 0.25]
    assert sampling_weights(np.array([0, 1]), np.ones(2), 2, "shuffle") is None
