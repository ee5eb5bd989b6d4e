"""Target mapping and taxonomic rollup of classifier probabilities (``run`` and ``merge``).

Rollup needs each output label's lineage. It comes from, in this order:

1. ``--taxonomy`` (a ct-taxonomy taxonomy CSV) with ``--rollup-spec`` (the label spec of
   the output labels, e.g. the spec the classifier was trained from), or without a spec
   by looking each label's name up in the taxonomy (``gray_fox`` → ``gray fox``);
2. the bundle's ``taxonomy`` field.

The bundle format (what a trainer writes into ``BundleMeta.taxonomy``) is one string per
label, **root first**, each taxon ``level:name``, separated by ``;``::

    {"coyote": "class:mammalia;order:carnivora;family:canidae;genus:canis;species:canis latrans",
     "blank": ""}

Levels are ct-taxonomy's rank names (``kingdom`` … ``species``), names are scientific
names; case does not matter. A label without a taxon maps to ``""`` or is left out.
:func:`lineages_to_meta` writes this format from ct-taxonomy lineages. Readers also accept
a list of ``[level, name]`` pairs, and a string written leaf first (recognised by its
rank order and reversed).

With a target mapping, a target's lineage is the common part of its labels' lineages
(``predator`` = coyote + cougar → ``order carnivora``), unless a spec or the taxonomy
names the target itself.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ct_io.errors import CamtrapError
from ct_taxonomy.rollup import Lineage, common_lineage
from ct_taxonomy.taxonomy import RANKS, Taxon

log = logging.getLogger(__name__)

NO_TAXONOMY_HINT = (
    "pass --taxonomy TAXONOMY.csv (ct-taxonomy's taxonomy mapping CSV), with --rollup-spec "
    "LABEL_SPEC.json when the labels are not taxon names"
)
_RANK_ORDER = {rank: i for i, rank in enumerate(RANKS)}


def lineage_to_text(lineage: Sequence[Taxon]) -> str:
    """``"class:mammalia;order:carnivora"`` for a root-first lineage."""
    return ";".join(f"{t.level}:{t.name}" for t in lineage)


def lineages_to_meta(lineages: Mapping[str, Sequence[Taxon]]) -> dict[str, str]:
    """The bundle's ``taxonomy`` field from label → lineage (e.g. ct-taxonomy's ``spec_lineages``)."""
    return {label: lineage_to_text(lineage) for label, lineage in lineages.items()}


def parse_lineage(label: str, value: Any) -> Lineage:
    """One bundle taxonomy entry → a root-first lineage (see the module docstring)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, str):
        for part in (p.strip() for p in value.split(";")):
            if not part:
                continue
            level, sep, name = part.partition(":")
            if not sep or not level.strip() or not name.strip():
                raise CamtrapError(
                    f"bundle taxonomy of {label!r}: {part!r} is not level:name (e.g. family:canidae) — "
                    + NO_TAXONOMY_HINT
                )
            pairs.append((level, name))
    elif isinstance(value, list | tuple) and all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(v, str) for v in p)
        for p in value
    ):
        pairs = [(str(p[0]), str(p[1])) for p in value]
    elif value is not None:
        raise CamtrapError(
            f"bundle taxonomy of {label!r}: expected a 'level:name;…' string, got {type(value).__name__} — "
            + NO_TAXONOMY_HINT
        )
    lineage = [Taxon(level, name) for level, name in pairs]
    ranks = [_RANK_ORDER[t.level] for t in lineage if t.level in _RANK_ORDER]
    if len(ranks) >= 2 and all(a > b for a, b in itertools.pairwise(ranks)):
        lineage.reverse()  # written leaf first
    return tuple(lineage)


def lineages_from_meta(taxonomy: Mapping[str, Any]) -> dict[str, Lineage]:
    """Label → lineage from a bundle's ``taxonomy`` field."""
    return {label: parse_lineage(label, value) for label, value in taxonomy.items()}


def lineages_from_taxonomy(
    labels: Sequence[str],
    taxonomy_csv: str | os.PathLike[str],
    rollup_spec: str | os.PathLike[str] | None = None,
) -> dict[str, Lineage]:
    """Label → lineage from a ct-taxonomy CSV: through the label spec, else by taxon name."""
    from ct_taxonomy.rollup import name_lineages, spec_lineages
    from ct_taxonomy.taxonomy import read_taxonomy

    taxonomy = read_taxonomy(taxonomy_csv)
    if rollup_spec is not None:
        from ct_taxonomy.spec import read_spec

        return spec_lineages(read_spec(rollup_spec), taxonomy)
    return name_lineages(list(labels), taxonomy)


def rollup_lineages(
    labels: Sequence[str],
    *,
    bundle_taxonomy: Mapping[str, Any] | None = None,
    taxonomy_csv: str | os.PathLike[str] | None = None,
    rollup_spec: str | os.PathLike[str] | None = None,
    target_mapping: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Lineage]:
    """Lineage of each output label (the targets with a mapping); see the module docstring.

    Raises ``CamtrapError`` saying what to pass when no output label has a lineage; logs
    one warning naming the labels without one (they only count for themselves).
    """
    if rollup_spec is not None and taxonomy_csv is None:
        raise CamtrapError("--rollup-spec needs --taxonomy (the taxonomy CSV the spec refers to)")
    outputs = list(target_mapping) if target_mapping is not None else list(labels)
    if taxonomy_csv is not None:
        names = [*outputs, *labels] if target_mapping is not None else outputs
        base = lineages_from_taxonomy(names, taxonomy_csv, rollup_spec)
        source = str(taxonomy_csv)
    elif bundle_taxonomy:
        base = lineages_from_meta(bundle_taxonomy)
        source = "the bundle's taxonomy"
    else:
        raise CamtrapError(
            "--rollup needs each label's taxonomy; this model has none — " + NO_TAXONOMY_HINT
        )
    found = {label: base.get(label, ()) for label in outputs}
    if target_mapping is not None:
        for target, members in target_mapping.items():
            if not found[target] and members:
                found[target] = common_lineage([base.get(m, ()) for m in members])
    missing = [label for label, lineage in found.items() if not lineage]
    if len(missing) == len(found):
        raise CamtrapError(
            f"--rollup: none of the labels has a lineage in {source} — " + NO_TAXONOMY_HINT
        )
    if missing:
        log.warning(
            "rollup: %d of %d labels have no lineage in %s (%s%s); they only count for themselves",
            len(missing),
            len(found),
            source,
            ", ".join(missing[:5]),
            ", …" if len(missing) > 5 else "",
        )
    return found


def map_targets(
    frame: pd.DataFrame, labels: Sequence[str], target_mapping: Mapping[str, Sequence[str]]
) -> tuple[pd.DataFrame, list[str]]:
    """Sum label probabilities into targets; other columns (path, label, weight) are kept."""
    from ct_infer.mapping import aggregation_matrix

    targets = list(target_mapping)
    sums = frame[list(labels)].to_numpy() @ aggregation_matrix(labels, targets, target_mapping)
    kept = frame[[c for c in frame.columns if c not in set(labels)]]
    mapped = pd.DataFrame(sums, columns=targets, index=frame.index)
    return pd.concat([kept.drop(columns=targets, errors="ignore"), mapped], axis=1), targets
