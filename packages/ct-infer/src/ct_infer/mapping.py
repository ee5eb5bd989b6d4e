"""Map a classifier's labels onto other (target) labels and sum their probabilities.

A target mapping is JSON ``{target: [classifier label, ...]}`` — what the seed's
``map_classification_categories.py`` writes and ct-taxonomy builds from label specs.
Each classifier label may feed at most one target; classifier labels no target claims
are dropped (their probability is not counted for any target).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import read_json
from ct_io.problems import Problem


def read_target_mapping(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read ``{target: [classifier labels]}``; a classifier label under two targets is an error."""
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()):
        raise FormatError(str(path), [Problem("$", "expected an object of target label → list of classifier labels")])
    check_mapping(data, str(path))
    return {str(k): list(v) for k, v in data.items()}


def check_mapping(mapping: Mapping[str, Sequence[str]], source: str = "target mapping") -> None:
    seen: dict[str, str] = {}
    for target, sources in mapping.items():
        for label in sources:
            if label in seen and seen[label] != target:
                raise CamtrapError(f"{source}: classifier label {label!r} is mapped to both {seen[label]!r} and {target!r}")
            seen[label] = target


def aggregation_matrix(classifier_labels: Sequence[str], targets: Sequence[str], mapping: Mapping[str, Sequence[str]]) -> np.ndarray:
    """(num classifier labels, num targets) 0/1 matrix: probabilities @ matrix = target probabilities."""
    check_mapping(mapping)
    index = {label: i for i, label in enumerate(classifier_labels)}
    unknown = sorted({label for srcs in mapping.values() for label in srcs} - set(index))
    if unknown:
        raise CamtrapError(f"target mapping names classifier label(s) the model does not have: {', '.join(unknown[:5])}")
    matrix = np.zeros((len(classifier_labels), len(targets)), np.float32)
    for j, target in enumerate(targets):
        for label in mapping.get(target, ()):
            matrix[index[label], j] = 1.0
    return matrix


def aggregate_probs(probs: np.ndarray, classifier_labels: Sequence[str], targets: Sequence[str], mapping: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Sum classifier probabilities into target probabilities (targets in the given order)."""
    return np.asarray(probs, np.float32) @ aggregation_matrix(classifier_labels, targets, mapping)
