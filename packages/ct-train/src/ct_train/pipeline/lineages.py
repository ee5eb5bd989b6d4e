"""Each classifier label's taxonomy, as the bundle stores it for ``ct-infer run --rollup``.

The run's taxonomy is ``labels.taxonomy`` or, failing that, the one its data source
brought (LILA's taxonomy mapping, recorded by the fetch stage). A label's lineage is the
lowest taxon holding everything its label-spec rule selects (``ct_taxonomy.rollup``'s
rule); a label the spec does not explain is looked up by name (``gray_fox`` → gray fox).
Labels with no known lineage (``other``, ``empty``) get none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ct_train.pipeline.stages import Context, fetched_record

if TYPE_CHECKING:
    from ct_taxonomy.spec import LabelSpec
    from ct_taxonomy.taxonomy import Taxon, Taxonomy

Lineage = tuple["Taxon", ...]


def lineage_text(lineage: Sequence[Taxon]) -> str:
    """Root-first ``"class:mammalia;order:carnivora;family:canidae"`` (ct-infer's format)."""
    return ";".join(f"{t.level}:{t.name}" for t in lineage)


def label_lineages(
    labels: Sequence[str],
    taxonomy: Taxonomy,
    spec: LabelSpec | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Lineage]:
    """Label → lineage (root first) for the labels the taxonomy knows; others are left out.

    ``aliases`` names the datasets of the spec as the taxonomy may call them (a LILA
    dataset fetched as ``island_conservation`` is ``Island Conservation Camera Traps``
    in LILA's mapping; ``combined`` stands for every dataset combined into it).
    """
    from ct_taxonomy.rollup import common_lineage, name_lineages
    from ct_taxonomy.taxonomy import Taxon

    aliases = aliases or {}

    def dataset_label(dataset: str, name: str) -> Lineage:
        for ds in (dataset, *aliases.get(dataset, ())):
            row = taxonomy.row_of(ds, name)
            if row is not None:
                return taxonomy.lineages[row]
        return ()

    out: dict[str, Lineage] = {}
    rules = spec.labels if spec is not None else {}
    by_name = name_lineages(labels, taxonomy)
    for label in labels:
        rule = rules.get(label)
        lineage: Lineage = ()
        if rule is not None:
            paths = [taxonomy.lineage(Taxon(t.level, t.name)) for t in rule.taxa]
            paths += [
                dataset_label(ds, name)
                for ds, names in rule.dataset_labels.items()
                for name in names
            ]
            lineage = common_lineage(paths)
        lineage = lineage or by_name.get(label, ())
        if lineage:
            out[label] = lineage
    return out


def run_label_taxonomy(ctx: Context, labels: Sequence[str]) -> dict[str, str]:
    """Label → taxonomy string for the bundle, from the run's taxonomy (empty without one)."""
    from ct_taxonomy.spec import every_category_spec, read_spec
    from ct_taxonomy.taxonomy import read_taxonomy

    record = fetched_record(ctx)
    lab = ctx.cfg.labels
    path = lab.taxonomy or (record or {}).get("taxonomy")
    if not path:
        return {}
    taxonomy = read_taxonomy(path)
    spec = None
    if lab.spec is not None:
        spec = read_spec(lab.spec)
    elif record is not None:
        from ct_io.cct import read_cct

        categories = read_cct(record["cct"]).categories["name"].tolist()
        spec = every_category_spec(categories, record["name"])
    aliases = (record or {}).get("aliases") or {}
    lineages = label_lineages(labels, taxonomy, spec, aliases)
    return {label: lineage_text(lin) for label, lin in lineages.items()}
