"""``max_count`` sampling with ``prioritize`` order, deterministic for a seed.

Labels are served in spec order. For a label with ``max_count``, images already kept
for an earlier label count towards its quota; the rest is filled from the first
priority group of datasets, then the next, then every other dataset, each draw a
seeded random sample. The same seed, spec and images give the same selection, whatever
order the datasets were read in.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from ct_taxonomy.spec import LabelSpec


def sample_with_priority(
    images: Mapping[str, tuple[str, Sequence[str]]], spec: LabelSpec, seed: int
) -> set[str]:
    """Keys of the images to keep.

    ``images`` maps an image key to ``(dataset name, labels)``. Labels without
    ``max_count`` keep all their images.
    """
    by_label: dict[str, list[str]] = {label: [] for label in spec.labels}
    for key in sorted(images):
        for label in images[key][1]:
            if label in by_label:
                by_label[label].append(key)
    kept: set[str] = set()
    for label, rule in spec.labels.items():
        keys = by_label[label]
        if rule.max_count is None:
            kept.update(keys)
            continue
        rng = random.Random(f"{seed}:{label}")
        quota = max(0, rule.max_count - sum(1 for k in keys if k in kept))
        levels: list[set[str] | None] = [
            {d.lower() for d in group} for group in rule.prioritize or ()
        ]
        levels.append(None)
        for level in levels:
            if quota == 0:
                break
            pool = [k for k in _in_datasets(keys, images, level) if k not in kept]
            take = min(quota, len(pool))
            kept.update(rng.sample(pool, take))
            quota -= take
    return kept


def _in_datasets(
    keys: Iterable[str], images: Mapping[str, tuple[str, Sequence[str]]], datasets: set[str] | None
) -> list[str]:
    if datasets is None:
        return list(keys)
    return [k for k in keys if images[k][0].lower() in datasets]
