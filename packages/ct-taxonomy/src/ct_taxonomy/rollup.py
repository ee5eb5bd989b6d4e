"""Taxonomic rollup: when no label is sure enough, name the taxon that is.

If the best label clears the threshold it is the answer. Otherwise the probabilities of
all labels under each taxon are summed, and the answer is the lowest (deepest) taxon
whose sum clears the threshold — e.g. ``family canidae 0.91`` when the classifier
hesitates between coyote (0.48) and gray fox (0.43). Ties at the same depth go to the
larger sum. Labels without a lineage (``other``) only count for themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from attrs import frozen

from ct_taxonomy.spec import LabelSpec
from ct_taxonomy.taxonomy import Taxon, Taxonomy

#: ``rollup_level`` of an answer that is a label itself, not a taxon above labels.
LABEL_LEVEL = "label"
ROLLUP_COLUMNS = ("rollup_label", "rollup_level", "rollup_conf")

Lineage = tuple[Taxon, ...]


@frozen
class Rollup:
    """The answer for one prediction: a label or a taxon, its level and probability."""

    name: str
    level: str
    conf: float

    def __str__(self) -> str:
        return (
            f"{self.name} {self.conf:.2f}"
            if self.level == LABEL_LEVEL
            else f"{self.level} {self.name} {self.conf:.2f}"
        )


def common_lineage(lineages: Sequence[Lineage]) -> Lineage:
    """The shared root-first prefix of several lineages (their lowest common ancestor's)."""
    if not lineages:
        return ()
    out: list[Taxon] = []
    for level in zip(*lineages, strict=False):
        if any(t != level[0] for t in level):
            break
        out.append(level[0])
    return tuple(out)


def spec_lineages(spec: LabelSpec, taxonomy: Taxonomy) -> dict[str, Lineage]:
    """Label → the lineage of the lowest taxon containing everything the label selects."""
    out: dict[str, Lineage] = {}
    for label, rule in spec.labels.items():
        paths: list[Lineage] = [taxonomy.lineage(Taxon(t.level, t.name)) for t in rule.taxa]
        for ds, names in rule.dataset_labels.items():
            for name in names:
                i = taxonomy.row_of(ds, name)
                paths.append(taxonomy.lineages[i] if i is not None else ())
        out[label] = common_lineage(paths)
    return out


def name_lineages(labels: Sequence[str], taxonomy: Taxonomy) -> dict[str, Lineage]:
    """Label → lineage, for labels named after a taxon (scientific or common name).

    ``gray_fox`` is looked up as ``gray fox``; labels with no unique match get none.
    """
    out: dict[str, Lineage] = {}
    for label in labels:
        found = taxonomy.find(label.replace("_", " "))
        lineages = {taxonomy.lineage(t) for t in found}
        out[label] = lineages.pop() if len(lineages) == 1 else ()
    return out


def rollup_array(
    probs: np.ndarray, labels: Sequence[str], lineages: Mapping[str, Lineage], threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rollup for every row of ``probs`` (rows × labels), vectorized.

    Returns ``(names, levels, confs)``: object arrays with ``""`` and a float array with
    NaN where nothing clears the threshold.
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=float))
    n = len(probs)
    names = np.full(n, "", dtype=object)
    levels = np.full(n, "", dtype=object)
    confs = np.full(n, np.nan)
    if not len(labels) or not n:
        return names, levels, confs
    taxa = sorted({t for lb in labels for t in lineages.get(lb, ())})
    if taxa:
        index = {t: j for j, t in enumerate(taxa)}
        member = np.zeros((len(labels), len(taxa)))
        depth = np.zeros(len(taxa))
        for i, lb in enumerate(labels):
            for d, t in enumerate(lineages.get(lb, ())):
                member[i, index[t]] = 1.0
                depth[index[t]] = max(depth[index[t]], d)
        sums = probs @ member
        key = np.where(sums >= threshold, depth * 4.0 + np.minimum(sums, 3.0), -np.inf)
        j = key.argmax(axis=1)
        hit = np.isfinite(key[np.arange(n), j])
        taxon_names = np.array([t.name for t in taxa], dtype=object)
        taxon_levels = np.array([t.level for t in taxa], dtype=object)
        names[hit], levels[hit], confs[hit] = (
            taxon_names[j[hit]],
            taxon_levels[j[hit]],
            sums[np.arange(n), j][hit],
        )
    best = probs.argmax(axis=1)
    best_p = probs[np.arange(n), best]
    sure = best_p >= threshold
    names[sure] = np.array(labels, dtype=object)[best[sure]]
    levels[sure] = LABEL_LEVEL
    confs[sure] = best_p[sure]
    return names, levels, confs


def rollup(
    probs: Mapping[str, float], lineages: Mapping[str, Lineage], threshold: float
) -> Rollup | None:
    """Rollup for one prediction given as ``label → probability``."""
    labels = list(probs)
    names, levels, confs = rollup_array(
        np.array([[probs[lb] for lb in labels]]), labels, lineages, threshold
    )
    return Rollup(str(names[0]), str(levels[0]), float(confs[0])) if names[0] else None
