"""Map a classifier's labels onto other (target) labels and sum their probabilities.

A target mapping is JSON ``{target: [classifier label, ...]}`` — what the seed's
``map_classification_categories.py`` writes and ``ct-taxonomy map`` builds from label
specs (reading and validation are ct-taxonomy's). Classifier labels no target claims
are dropped (their probability counts for no target).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ct_io.errors import CamtrapError
from ct_taxonomy.aggregate import Aggregation
from ct_taxonomy.mapping import read_target_mapping

__all__ = ["aggregate_probs", "aggregation_matrix", "read_target_mapping"]


def aggregation_matrix(
    classifier_labels: Sequence[str], targets: Sequence[str], mapping: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """(num classifier labels, num targets) 0/1 matrix: probabilities @ matrix = target probabilities."""
    plan = Aggregation.from_mapping(mapping)  # rejects a label under two targets
    index = {label: i for i, label in enumerate(classifier_labels)}
    unknown = sorted(set(plan.labels) - set(index))
    if unknown:
        raise CamtrapError(
            f"target mapping names classifier label(s) the model does not have: {', '.join(unknown[:5])}"
        )
    matrix = np.zeros((len(classifier_labels), len(targets)), np.float32)
    for j, target in enumerate(targets):
        for label in mapping.get(target, ()):
            matrix[index[label], j] = 1.0
    return matrix


def aggregate_probs(
    probs: np.ndarray,
    classifier_labels: Sequence[str],
    targets: Sequence[str],
    mapping: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """Sum classifier probabilities into target probabilities (targets in the given order)."""
    return np.asarray(probs, np.float32) @ aggregation_matrix(classifier_labels, targets, mapping)
