"""Map a classifier's labels onto the target categories a user cares about.

Both the target spec and the classifier's own label spec are turned into sets of taxa
(each selected taxon with everything below it; a dataset label stands for its taxon and
everything below). A classifier label goes to the target whose taxa contain all of its
taxa. A target that covers only part of a classifier label is an error (the classifier
cannot tell those parts apart). Classifier labels no target claims go to ``other``.
Every classifier label ends up in exactly one target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import read_json, write_json
from ct_io.problems import Problem
from ct_taxonomy.resolve import resolve_spec
from ct_taxonomy.spec import LabelRule, LabelSpec, Selector, label_path
from ct_taxonomy.suggest import did_you_mean
from ct_taxonomy.taxonomy import Taxon, Taxonomy

OTHER = "other"
#: Level of the stand-in node for a dataset label that has no taxon (e.g. ``empty``).
DATASET_LABEL_LEVEL = "dataset_label"


def label_nodes(spec: LabelSpec, taxonomy: Taxonomy) -> dict[str, set[Taxon]]:
    """Label → the taxa it covers (exclusions removed).

    Raises ``FormatError`` for unknown taxa or dataset labels and when two labels of
    the spec cover the same taxon.
    """
    resolution = resolve_spec(spec, taxonomy, allow_multilabel=True)
    if resolution.errors:
        raise FormatError(spec.source, resolution.errors)
    out: dict[str, set[Taxon]] = {}
    owner: dict[Taxon, str] = {}
    problems: list[Problem] = []
    for label, rule in spec.labels.items():
        nodes = _selector_nodes(rule, taxonomy)
        if rule.exclude is not None:
            nodes -= _selector_nodes(rule.exclude, taxonomy)
        if not nodes:
            problems.append(
                Problem(
                    spec.locate(label_path(label)), "covers no taxon once exclusions are removed"
                )
            )
        clash = sorted({owner[n] for n in nodes if n in owner})
        for other in clash:
            shared = sorted(str(n) for n in nodes if owner.get(n) == other)
            problems.append(
                Problem(
                    spec.locate(label_path(label)),
                    f"shares {len(shared)} taxa with label {other!r}: {', '.join(shared[:4])}",
                    "exclude them from one of the two labels",
                )
            )
        for n in nodes:
            owner.setdefault(n, label)
        out[label] = nodes
    if problems:
        raise FormatError(spec.source, problems)
    return out


def _selector_nodes(sel: Selector | LabelRule, taxonomy: Taxonomy) -> set[Taxon]:
    nodes: set[Taxon] = set()
    for ref in sel.taxa:
        taxon = Taxon(ref.level, ref.name)
        nodes |= {taxon, *taxonomy.descendants(taxon)}
    for ds, names in sel.dataset_labels.items():
        for name in names:
            leaf = taxonomy.label_taxon(ds, name)
            if leaf is None:
                nodes.add(Taxon(DATASET_LABEL_LEVEL, f"{ds}|{name}"))
            else:
                nodes |= {leaf, *taxonomy.descendants(leaf)}
    return nodes


def map_targets(
    target_spec: LabelSpec,
    classifier_spec: LabelSpec,
    taxonomy: Taxonomy,
    classifier_labels: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Target → classifier labels (sorted); unclaimed classifier labels go to ``other``.

    ``classifier_labels`` (the classifier's label index) limits the mapping to the labels
    the classifier really outputs; each must be in its spec. Targets that claim no
    classifier label map to an empty list (their probability is always 0).
    """
    if OTHER in target_spec.labels:
        raise CamtrapError(
            f"{target_spec.source}: the target label {OTHER!r} is reserved for classifier labels no target claims — rename it"
        )
    if classifier_labels is not None:
        missing = [lb for lb in classifier_labels if lb not in classifier_spec.labels]
        if missing:
            hint = did_you_mean(missing[0], classifier_spec.labels)
            raise CamtrapError(
                f"classifier label(s) {', '.join(map(repr, missing))} of the label index are not in {classifier_spec.source}{' — ' + hint if hint else ''}"
            )
        wanted = set(classifier_labels)
        classifier_spec = LabelSpec(
            labels={k: v for k, v in classifier_spec.labels.items() if k in wanted},
            source=classifier_spec.source,
            lines=classifier_spec.lines,
        )
    targets = label_nodes(target_spec, taxonomy)
    classifier = label_nodes(classifier_spec, taxonomy)
    mapping: dict[str, list[str]] = {t: [] for t in targets}
    claimed: set[str] = set()
    problems: list[Problem] = []
    for target, t_nodes in targets.items():
        for label, c_nodes in classifier.items():
            overlap = c_nodes & t_nodes
            if overlap == c_nodes:
                mapping[target].append(label)
                claimed.add(label)
            elif overlap:
                example = ", ".join(sorted(str(n) for n in overlap)[:3])
                problems.append(
                    Problem(
                        target_spec.locate(label_path(target)),
                        f"covers only part of classifier label {label!r} ({len(overlap)} of its {len(c_nodes)} taxa, e.g. {example})",
                        "widen the target to the whole classifier label, or leave that part out",
                    )
                )
    if problems:
        raise FormatError(target_spec.source, problems)
    rest = sorted(set(classifier) - claimed)
    if rest:
        mapping[OTHER] = rest
    return {t: sorted(v) for t, v in mapping.items()}


def read_target_mapping(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read ``target → [classifier labels]``; each classifier label must appear once."""
    data = read_json(path)
    problems: list[Problem] = []
    if not isinstance(data, dict) or not data:
        raise FormatError(
            str(path),
            [Problem("$", "expected a non-empty object of target → list of classifier labels")],
        )
    seen: dict[str, str] = {}
    for target, labels in data.items():
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            problems.append(Problem(f"$[{target!r}]", "expected a list of classifier label names"))
            continue
        for lb in labels:
            if lb in seen:
                problems.append(
                    Problem(
                        f"$[{target!r}]",
                        f"classifier label {lb!r} is also mapped to {seen[lb]!r}",
                        "each classifier label belongs to exactly one target",
                    )
                )
            seen[lb] = target
    if problems:
        raise FormatError(str(path), problems)
    return {str(t): list(v) for t, v in data.items()}


def write_target_mapping(mapping: dict[str, list[str]], path: str | os.PathLike[str]) -> None:
    """Write the mapping JSON atomically."""
    write_json(path, mapping)
