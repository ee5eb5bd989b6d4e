"""Resolve a label spec to the dataset labels each classifier label claims.

This is the check the seed's ``json_validator.py`` made against the taxonomy CSV:
every taxon and dataset label exists (near matches suggested when not), every label
selects something, exclusions exclude something, and no two labels claim the same
dataset label unless multi-label output is allowed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from attrs import define, field

from ct_io.problems import Problem
from ct_taxonomy.spec import LabelSpec, Selector, label_path
from ct_taxonomy.suggest import did_you_mean
from ct_taxonomy.taxonomy import LabelKey, Taxon, Taxonomy, label_key


@define
class Resolution:
    """Label → the (dataset, dataset label) keys it claims, plus every problem found."""

    labels: dict[str, set[LabelKey]]
    problems: list[Problem] = field(factory=list)
    overlaps: dict[LabelKey, list[str]] = field(factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    def labels_by_key(self) -> dict[LabelKey, list[str]]:
        """Dataset label key → the classifier labels that claim it (spec order)."""
        out: dict[LabelKey, list[str]] = defaultdict(list)
        for label, keys in self.labels.items():
            for k in keys:
                out[k].append(label)
        return dict(out)


def resolve_spec(
    spec: LabelSpec,
    taxonomy: Taxonomy | None,
    *,
    dataset_categories: Mapping[str, set[str]] | None = None,
    allow_multilabel: bool = False,
    ignore_missing_datasets: bool = False,
) -> Resolution:
    """Resolve every label of ``spec``.

    ``dataset_categories`` (dataset key → lower-case category names) describes the CCT
    datasets being selected from; when given, explicit dataset names and dataset labels
    are checked against it rather than against the taxonomy. Problems carry the spec's
    location of the offending element (a CSV line or a JSON path).
    """
    r = _Resolver(spec, taxonomy, dataset_categories, ignore_missing_datasets)
    labels: dict[str, set[LabelKey]] = {}
    for label, rule in spec.labels.items():
        at = label_path(label)
        included = r.select(rule, at)
        if rule.exclude is not None:
            excluded = r.select(rule.exclude, f"{at}.exclude")
            if excluded and included and not excluded & included:
                r.add(
                    f"{at}.exclude",
                    "excludes nothing this label selects",
                    "check the excluded taxa and dataset labels",
                    "warning",
                )
            included -= excluded
        if not included and not r.label_failed:
            r.add(
                at,
                "matches no dataset label",
                "check its taxa and dataset labels against the taxonomy",
            )
        r.label_failed = False
        labels[label] = included
        for group_i, group in enumerate(rule.prioritize or ()):
            for ds in group:
                r.check_dataset(ds, f"{at}.prioritize[{group_i}]")
    resolution = Resolution(labels=labels, problems=r.problems)
    _check_overlaps(spec, resolution, allow_multilabel)
    return resolution


class _Resolver:
    def __init__(
        self,
        spec: LabelSpec,
        taxonomy: Taxonomy | None,
        categories: Mapping[str, set[str]] | None,
        ignore_missing: bool,
    ) -> None:
        self.spec = spec
        self.taxonomy = taxonomy
        self.categories = categories
        self.ignore_missing = ignore_missing
        self.problems: list[Problem] = []
        self.label_failed = False
        self._reported_datasets: set[str] = set()

    def add(self, path: str, message: str, hint: str = "", severity: str = "error") -> None:
        self.problems.append(Problem(self.spec.locate(path), message, hint, severity))
        if severity == "error":
            self.label_failed = True

    def known_datasets(self) -> dict[str, str] | None:
        if self.categories is not None:
            return {k: k for k in self.categories}
        return self.taxonomy.datasets if self.taxonomy is not None else None

    def check_dataset(self, dataset: str, path: str) -> bool:
        """Whether ``dataset`` is known; reports it once when not."""
        known = self.known_datasets()
        if known is None or dataset.strip().lower() in known:
            return True
        if dataset not in self._reported_datasets:
            self._reported_datasets.add(dataset)
            where = "the datasets given" if self.categories is not None else "the taxonomy"
            hint = (
                did_you_mean(dataset, known.values())
                or f"known: {', '.join(sorted(known.values())[:8])}"
            )
            self.add(
                path,
                f"dataset {dataset!r} is not in {where}",
                hint,
                "warning" if self.ignore_missing else "error",
            )
        return False

    def select(self, sel: Selector, at: str) -> set[LabelKey]:
        keys: set[LabelKey] = set()
        for i, ref in enumerate(sel.taxa):
            path = f"{at}.taxa[{i}]"
            if self.taxonomy is None:
                self.add(
                    path,
                    f"selects taxon '{ref.level} {ref.name}' but no taxonomy was given",
                    "pass --taxonomy with LILA's taxonomy mapping CSV",
                )
                continue
            taxon = Taxon(ref.level, ref.name)
            if not self.taxonomy.has(taxon):
                self.add(
                    path,
                    f"taxon '{taxon}' is not in the taxonomy",
                    self.taxonomy.suggest_taxon(taxon),
                )
                continue
            if ref.datasets is not None:
                for ds in ref.datasets:
                    self.check_dataset(ds, f"{path}.datasets")
            found = self.taxonomy.dataset_labels_under(taxon, ref.datasets)
            if not found and ref.datasets is not None:
                self.add(
                    path,
                    f"taxon '{taxon}' has no labels in {', '.join(ref.datasets)}",
                    "",
                    "warning",
                )
            keys |= found
        for ds, names in sel.dataset_labels.items():
            if not self.check_dataset(ds, f"{at}.dataset_labels[{ds!r}]"):
                continue
            for j, name in enumerate(names):
                key = label_key(ds, name)
                if self._label_exists(key):
                    keys.add(key)
                else:
                    self.add(
                        f"{at}.dataset_labels[{ds!r}][{j}]",
                        f"dataset {ds!r} has no label {name!r}",
                        self._suggest_label(ds, name),
                    )
        return keys

    def _label_exists(self, key: LabelKey) -> bool:
        if self.categories is not None:
            return key[1] in self.categories.get(key[0], set())
        if self.taxonomy is not None:
            return self.taxonomy.row_of(*key) is not None
        return True

    def _suggest_label(self, ds: str, name: str) -> str:
        if self.categories is not None:
            return did_you_mean(name, self.categories.get(ds.strip().lower(), set()))
        return self.taxonomy.suggest_label(ds, name) if self.taxonomy is not None else ""


def _check_overlaps(spec: LabelSpec, resolution: Resolution, allow_multilabel: bool) -> None:
    by_key = resolution.labels_by_key()
    shared = {k: v for k, v in by_key.items() if len(v) > 1}
    resolution.overlaps = shared
    pairs: dict[tuple[str, ...], list[LabelKey]] = defaultdict(list)
    for key, labels in shared.items():
        pairs[tuple(labels)].append(key)
    for names, keys in pairs.items():
        sample = ", ".join(f"{ds}|{lb}" for ds, lb in sorted(keys)[:5]) + (
            " …" if len(keys) > 5 else ""
        )
        severity = "warning" if allow_multilabel else "error"
        hint = (
            "images with these labels get every label (--allow-multilabel)"
            if allow_multilabel
            else "exclude them from all but one label, or pass --allow-multilabel"
        )
        message = f"labels {', '.join(repr(x) for x in names)} claim the same {len(keys)} dataset label(s): {sample}"
        resolution.problems.append(
            Problem(spec.locate(label_path(names[-1])), message, hint, severity)
        )
