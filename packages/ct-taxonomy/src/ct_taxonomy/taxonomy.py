"""The taxonomy table: which taxon each (dataset, dataset label) means.

Reads LILA's taxonomy mapping CSV (``dataset_name, query, scientific_name, common_name,
taxonomy_level, taxonomy_string``), the rank columns of LILA's all-images table
(``dataset_name, original_label, ..., kingdom … variety``; CSV, CSV.gz or CSV.zip), or
any CSV with ``dataset_name, query`` and rank columns. The result is one pandas row per
dataset label with one column per rank, plus each row's lineage (root → leaf), so the
table answers lookups by any rank and ancestor/descendant questions.

Names are matched case-insensitively: every level and name is stored lower-case, and
``(dataset, label)`` keys are lower-cased (:func:`label_key`).
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from attrs import define, field, frozen

from ct_io.errors import CamtrapError
from ct_taxonomy.suggest import did_you_mean

#: The rank columns of LILA's all-images table, root first.
RANKS: tuple[str, ...] = (
    "kingdom", "phylum", "subphylum", "superclass", "class", "subclass", "infraclass",
    "superorder", "order", "suborder", "infraorder", "superfamily", "family", "subfamily",
    "tribe", "genus", "subgenus", "species", "subspecies", "variety",
)  # fmt: skip
#: Every level a spec may name: the ranks above plus rarer ones found in GBIF/iNat lineages.
KNOWN_LEVELS: tuple[str, ...] = (
    *RANKS,
    "superkingdom", "subkingdom", "infrakingdom", "superphylum", "infraphylum",
    "megaclass", "subterclass", "parvclass", "cohort", "magnorder", "parvorder",
    "section", "subsection", "epifamily", "zoosection", "zoosubsection", "subtribe",
    "infraspecies", "form", "subvariety", "hybrid", "complex",
)  # fmt: skip
MAPPING_COLUMNS = (
    "dataset_name",
    "query",
    "scientific_name",
    "common_name",
    "taxonomy_level",
    "taxonomy_string",
)
ALL_IMAGES_KEY_COLUMNS = ("dataset_name", "original_label")
_CHUNK_ROWS = 500_000

LabelKey = tuple[str, str]


def label_key(dataset: str, label: str) -> LabelKey:
    """The case-insensitive key of a dataset label."""
    return (str(dataset).strip().lower(), str(label).strip().lower())


def _norm(text: Any) -> str:
    return str(text).strip().lower()


@frozen(order=True)
class Taxon:
    """A taxon: its level (``family``) and scientific name (``canidae``), lower-case."""

    level: str = field(converter=_norm)
    name: str = field(converter=_norm)

    def __str__(self) -> str:
        return f"{self.level} {self.name}"


@define
class Taxonomy:
    """One row per (dataset, dataset label) with its taxon and lineage.

    ``frame`` columns: ``dataset_name``, ``query``, ``scientific_name``, ``common_name``,
    ``taxonomy_level`` and one column per rank of :data:`RANKS` (None where the lineage
    skips the rank). ``lineages[i]`` is row ``i``'s lineage, root first; it is empty for
    labels with no taxon (``empty``, ``human`` in some datasets).
    """

    frame: pd.DataFrame
    lineages: list[tuple[Taxon, ...]]
    source: str = "<taxonomy>"
    common_names: dict[Taxon, set[str]] = field(factory=dict)
    duplicates: list[LabelKey] = field(factory=list)
    _rows_by_taxon: dict[Taxon, list[int]] = field(init=False, factory=dict)
    _parents: dict[Taxon, set[Taxon]] = field(init=False, factory=dict)
    _children: dict[Taxon, set[Taxon]] = field(init=False, factory=dict)
    _depth: dict[Taxon, int] = field(init=False, factory=dict)
    _by_name: dict[str, set[Taxon]] = field(init=False, factory=dict)
    _row_of_label: dict[LabelKey, int] = field(init=False, factory=dict)
    _datasets: dict[str, str] = field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        rows_by_taxon: dict[Taxon, list[int]] = defaultdict(list)
        parents: dict[Taxon, set[Taxon]] = defaultdict(set)
        children: dict[Taxon, set[Taxon]] = defaultdict(set)
        by_name: dict[str, set[Taxon]] = defaultdict(set)
        for i, lineage in enumerate(self.lineages):
            for depth, taxon in enumerate(lineage):
                rows_by_taxon[taxon].append(i)
                self._depth[taxon] = max(self._depth.get(taxon, 0), depth)
                by_name[taxon.name].add(taxon)
                if depth:
                    parents[taxon].add(lineage[depth - 1])
                    children[lineage[depth - 1]].add(taxon)
        for taxon, names in self.common_names.items():
            for n in names:
                by_name[_norm(n)].add(taxon)
        self._rows_by_taxon, self._parents, self._children, self._by_name = (
            dict(rows_by_taxon),
            dict(parents),
            dict(children),
            dict(by_name),
        )
        for i, (ds, q) in enumerate(
            zip(self.frame["dataset_name"].tolist(), self.frame["query"].tolist(), strict=True)
        ):
            key = label_key(ds, q)
            if key in self._row_of_label:
                self.duplicates.append(key)
                continue
            self._row_of_label[key] = i
            self._datasets.setdefault(key[0], str(ds))

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"Taxonomy({self.source!r}, {len(self.frame)} dataset labels, {len(self._rows_by_taxon)} taxa)"

    # ------------------------------------------------------------ lookups

    @property
    def taxa(self) -> set[Taxon]:
        """Every taxon in any lineage."""
        return set(self._rows_by_taxon)

    @property
    def levels(self) -> set[str]:
        """Every level used by some lineage."""
        return {t.level for t in self._rows_by_taxon}

    @property
    def datasets(self) -> dict[str, str]:
        """Dataset key (lower-case) → name as written in the table."""
        return dict(self._datasets)

    def has(self, taxon: Taxon) -> bool:
        return taxon in self._rows_by_taxon

    def find(self, name: str, level: str | None = None) -> list[Taxon]:
        """Taxa called ``name`` (scientific or common name) at ``level`` or any level."""
        found = self._by_name.get(_norm(name), set())
        if level is not None:
            found = {t for t in found if t.level == _norm(level)}
        return sorted(found, key=lambda t: (self.depth(t), t.level))

    def at_level(self, level: str) -> list[Taxon]:
        """Every taxon of one rank (e.g. every family), sorted by name."""
        lv = _norm(level)
        return sorted(t for t in self._rows_by_taxon if t.level == lv)

    def depth(self, taxon: Taxon) -> int:
        """Distance from the root of the lineages (kingdom = 0)."""
        return self._depth.get(taxon, -1)

    def parents(self, taxon: Taxon) -> set[Taxon]:
        """Direct parents (usually one; GBIF and iNat lineages can disagree)."""
        return set(self._parents.get(taxon, ()))

    def children(self, taxon: Taxon) -> set[Taxon]:
        return set(self._children.get(taxon, ()))

    def ancestors(self, taxon: Taxon) -> list[Taxon]:
        """Every ancestor, nearest first."""
        seen: set[Taxon] = set()
        todo = list(self._parents.get(taxon, ()))
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo.extend(self._parents.get(t, ()))
        return sorted(seen, key=lambda t: (-self.depth(t), t.level, t.name))

    def descendants(self, taxon: Taxon) -> set[Taxon]:
        """Every taxon below ``taxon``."""
        seen: set[Taxon] = set()
        todo = list(self._children.get(taxon, ()))
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo.extend(self._children.get(t, ()))
        return seen

    def lineage(self, taxon: Taxon) -> tuple[Taxon, ...]:
        """Root → ``taxon`` along the lineage of the first row that contains it."""
        rows = self._rows_by_taxon.get(taxon)
        if not rows:
            return ()
        lin = self.lineages[rows[0]]
        return lin[: lin.index(taxon) + 1]

    def lowest_common_ancestor(self, taxa: Iterable[Taxon]) -> Taxon | None:
        """The deepest taxon that is ``t`` or an ancestor of ``t`` for every ``t``."""
        common: set[Taxon] | None = None
        for t in taxa:
            line = {t, *self.ancestors(t)} if self.has(t) else set()
            common = line if common is None else common & line
        if not common:
            return None
        return max(common, key=lambda t: (self.depth(t), t.level, t.name))

    # ------------------------------------------------------------ dataset labels

    def row_of(self, dataset: str, label: str) -> int | None:
        """Row index of a dataset label (case-insensitive), None when absent."""
        return self._row_of_label.get(label_key(dataset, label))

    def label_taxon(self, dataset: str, label: str) -> Taxon | None:
        """The taxon a dataset label means (the leaf of its lineage)."""
        i = self.row_of(dataset, label)
        if i is None or not self.lineages[i]:
            return None
        return self.lineages[i][-1]

    def dataset_labels_under(
        self, taxon: Taxon, datasets: Iterable[str] | None = None
    ) -> set[LabelKey]:
        """Keys of every dataset label whose taxon is ``taxon`` or below it."""
        rows = self._rows_by_taxon.get(taxon, [])
        keys = [
            label_key(self.frame["dataset_name"].iat[i], self.frame["query"].iat[i]) for i in rows
        ]
        if datasets is not None:
            wanted = {_norm(d) for d in datasets}
            keys = [k for k in keys if k[0] in wanted]
        return set(keys)

    def rows_under(self, taxon: Taxon) -> pd.DataFrame:
        """The table's rows whose lineage contains ``taxon``."""
        return self.frame.iloc[self._rows_by_taxon.get(taxon, [])]

    def labels_of_dataset(self, dataset: str) -> list[str]:
        """The labels the table knows for one dataset."""
        d = _norm(dataset)
        return [q for (ds, q) in self._row_of_label if ds == d]

    # ------------------------------------------------------------ suggestions

    def suggest_taxon(self, taxon: Taxon) -> str:
        """A hint for a taxon the table does not have."""
        other_levels = [t for t in self._by_name.get(taxon.name, set()) if t.level != taxon.level]
        if other_levels:
            return "the taxonomy has " + " and ".join(
                f"'{t.level} {t.name}'" for t in sorted(other_levels)
            )
        same_level = [t.name for t in self._rows_by_taxon if t.level == taxon.level]
        hint = did_you_mean(taxon.name, same_level)
        if hint:
            return hint
        if taxon.level not in self.levels:
            return f"the taxonomy has no level {taxon.level!r}" + (
                f"; {did_you_mean(taxon.level, self.levels)}"
                if did_you_mean(taxon.level, self.levels)
                else ""
            )
        return did_you_mean(taxon.name, list(self._by_name))

    def suggest_dataset(self, dataset: str) -> str:
        return did_you_mean(dataset, self._datasets.values())

    def suggest_label(self, dataset: str, label: str) -> str:
        return did_you_mean(label, self.labels_of_dataset(dataset))


# ---------------------------------------------------------------- reading


def read_taxonomy(path: str | os.PathLike[str]) -> Taxonomy:
    """Read a taxonomy mapping CSV or LILA's all-images table (CSV/CSV.gz/CSV.zip).

    Raises ``CamtrapError`` naming the file, the line and what to fix.
    """
    p = Path(path)
    if not p.is_file():
        raise CamtrapError(f"{p}: file not found")
    try:
        header = [str(c).strip() for c in pd.read_csv(p, nrows=0).columns]
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        OSError,
        EOFError,
        ValueError,
    ) as exc:
        raise CamtrapError(f"{p}: cannot read CSV ({exc})") from None
    cols = set(header)
    if "taxonomy_string" in cols or {"dataset_name", "query"} <= cols:
        return _read_mapping(p, header)
    if set(ALL_IMAGES_KEY_COLUMNS) <= cols:
        return _read_all_images(p, header)
    raise CamtrapError(
        f"{p}: not a taxonomy table — expected LILA's mapping columns ({', '.join(MAPPING_COLUMNS)}) "
        f"or the all-images columns (dataset_name, original_label, kingdom … species); found {', '.join(header)}"
    )


def _read_csv_text(
    p: Path, usecols: Sequence[str] | None = None, chunksize: int | None = None
) -> Any:
    try:
        return pd.read_csv(
            p, dtype=str, keep_default_na=False, na_values=[], usecols=usecols, chunksize=chunksize
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        raise CamtrapError(f"{p}: cannot read CSV ({exc})") from None


def _read_mapping(p: Path, header: list[str]) -> Taxonomy:
    missing = [c for c in ("dataset_name", "query") if c not in header]
    if missing:
        raise CamtrapError(f"{p}: missing column(s) {', '.join(missing)}")
    raw = _read_csv_text(p)
    ranks = [r for r in RANKS if r in raw.columns]
    if "taxonomy_string" not in raw.columns and not ranks:
        raise CamtrapError(
            f"{p}: has neither a taxonomy_string column nor rank columns ({', '.join(RANKS[:4])} …)"
        )
    lineages: list[tuple[Taxon, ...]] = []
    common: dict[Taxon, set[str]] = defaultdict(set)
    strings = (
        raw["taxonomy_string"].tolist() if "taxonomy_string" in raw.columns else [""] * len(raw)
    )
    rank_values = raw[ranks].to_numpy().tolist() if ranks else [[]] * len(raw)
    for i, (text, values) in enumerate(zip(strings, rank_values, strict=True)):
        if text.strip():
            lineage, names = _parse_taxonomy_string(text, p, i + 2)
            for t, n in names.items():
                common[t].update(n)
        else:
            lineage = _lineage_from_ranks(ranks, values)
        lineages.append(lineage)
    for col in ("scientific_name", "common_name", "taxonomy_level"):
        if col not in raw.columns:
            raw[col] = ""
    blank = (raw["dataset_name"].str.strip() == "") | (raw["query"].str.strip() == "")
    if blank.any():
        line = int(blank.to_numpy().argmax()) + 2
        raise CamtrapError(
            f"{p} line {line}: empty dataset_name or query — every row maps one dataset label"
        )
    for leaf, name in zip(
        [lin[-1] if lin else None for lin in lineages], raw["common_name"].tolist(), strict=True
    ):
        if leaf is not None and name.strip():
            common[leaf].add(name.strip())
    return Taxonomy(
        frame=_frame(raw, lineages), lineages=lineages, source=str(p), common_names=dict(common)
    )


def _read_all_images(p: Path, header: list[str]) -> Taxonomy:
    ranks = [r for r in RANKS if r in header]
    if not ranks:
        raise CamtrapError(
            f"{p}: the all-images table needs rank columns ({', '.join(RANKS[:4])} …)"
        )
    usecols = [
        *ALL_IMAGES_KEY_COLUMNS,
        *(c for c in ("scientific_name", "common_name") if c in header),
        *ranks,
    ]
    parts = []
    for chunk in _read_csv_text(p, usecols=usecols, chunksize=_CHUNK_ROWS):
        parts.append(chunk.drop_duplicates(list(ALL_IMAGES_KEY_COLUMNS)))
    raw = (
        pd.concat(parts, ignore_index=True).drop_duplicates(
            list(ALL_IMAGES_KEY_COLUMNS), ignore_index=True
        )
        if parts
        else pd.DataFrame(columns=usecols)
    )
    raw = raw.rename(columns={"original_label": "query"})
    lineages = [_lineage_from_ranks(ranks, values) for values in raw[ranks].to_numpy().tolist()]
    for col in ("scientific_name", "common_name"):
        if col not in raw.columns:
            raw[col] = ""
    raw["taxonomy_level"] = [lin[-1].level if lin else "" for lin in lineages]
    common: dict[Taxon, set[str]] = defaultdict(set)
    for lin, name in zip(lineages, raw["common_name"].tolist(), strict=True):
        if lin and name.strip():
            common[lin[-1]].add(name.strip())
    return Taxonomy(
        frame=_frame(raw, lineages), lineages=lineages, source=str(p), common_names=dict(common)
    )


def _lineage_from_ranks(ranks: Sequence[str], values: Sequence[Any]) -> tuple[Taxon, ...]:
    return tuple(
        Taxon(r, v) for r, v in zip(ranks, values, strict=True) if isinstance(v, str) and v.strip()
    )


def _parse_taxonomy_string(
    text: str, p: Path, line: int
) -> tuple[tuple[Taxon, ...], dict[Taxon, list[str]]]:
    """LILA's ``[(id, level, name, [common names]), ...]``, leaf first → lineage root first."""
    bad = f"{p} line {line}: taxonomy_string is not a list of (id, level, name, [common names]) — got {text[:60]!r}"
    try:
        items = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise CamtrapError(bad) from None
    if not isinstance(items, list | tuple):
        raise CamtrapError(bad)
    lineage: list[Taxon] = []
    names: dict[Taxon, list[str]] = {}
    for item in items:
        if (
            not isinstance(item, list | tuple)
            or len(item) < 3
            or not isinstance(item[1], str)
            or not isinstance(item[2], str)
        ):
            raise CamtrapError(bad)
        taxon = Taxon(item[1], item[2])
        lineage.append(taxon)
        if len(item) > 3 and isinstance(item[3], list | tuple):
            names[taxon] = [str(n) for n in item[3] if str(n).strip()]
    lineage.reverse()
    return tuple(lineage), names


def _frame(raw: pd.DataFrame, lineages: list[tuple[Taxon, ...]]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "dataset_name": raw["dataset_name"].astype(str).str.strip().to_numpy(),
            "query": raw["query"].astype(str).str.strip().to_numpy(),
            "scientific_name": raw["scientific_name"]
            .astype(str)
            .str.strip()
            .str.lower()
            .to_numpy(),
            "common_name": raw["common_name"].astype(str).str.strip().to_numpy(),
            "taxonomy_level": raw["taxonomy_level"].astype(str).str.strip().str.lower().to_numpy(),
        }
    )
    for rank in RANKS:
        out[rank] = [next((t.name for t in lin if t.level == rank), None) for lin in lineages]
    return out
