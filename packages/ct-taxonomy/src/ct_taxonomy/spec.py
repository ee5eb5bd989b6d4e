"""Label specifications: which taxa and dataset labels make up each classifier label.

Two syntaxes describe the same model (see ``docs/taxonomy.md``):

- JSON: ``{label: {taxa: [{level, name, datasets?}], dataset_labels: {dataset: [labels]},
  exclude: {taxa, dataset_labels}, max_count, prioritize: [[datasets], ...]}}``
- CSV: ``output_label,type,content`` rows with types ``row`` (``dataset|dataset_label``),
  ``datasettaxon`` (``dataset|level|name``), a taxon level (``name``), ``max_count`` and
  ``prioritize``; ``!label`` puts the row under ``exclude``.

Label order is kept: it is the order in which ``max_count`` quotas are filled.
A spec read from CSV remembers the line of every element, so later problems (an unknown
taxon, an overlap) point at the line to fix.
"""

from __future__ import annotations

import ast
import csv
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cattrs
from attrs import Factory, define, field
from cattrs.cols import is_sequence, list_structure_factory

from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import read_json, write_json
from ct_io.problems import Problem
from ct_taxonomy.suggest import did_you_mean
from ct_taxonomy.taxonomy import KNOWN_LEVELS

CSV_HEADER = ("output_label", "type", "content")
SPECIAL_TYPES = ("row", "datasettaxon", "max_count", "prioritize")


@define
class TaxonRef:
    """A taxon selected by level and name, optionally only from some datasets."""

    level: str
    name: str
    datasets: list[str] | None = None


@define
class Selector:
    """Taxa and dataset labels; used both to include and to exclude."""

    taxa: list[TaxonRef] = Factory(list)
    dataset_labels: dict[str, list[str]] = Factory(dict)

    def is_empty(self) -> bool:
        return not self.taxa and not any(self.dataset_labels.values())


@define
class LabelRule(Selector):
    """What one classifier label is made of, and how many images to sample for it."""

    exclude: Selector | None = None
    max_count: int | None = None
    prioritize: list[list[str]] | None = None


@define
class LabelSpec:
    """Classifier label → rule, in file order, plus where each element was written."""

    labels: dict[str, LabelRule]
    source: str = "<spec>"
    lines: dict[str, int] = field(factory=dict)

    def line_of(self, path: str) -> int | None:
        """The CSV line that wrote ``path`` (or its closest parent), None for JSON specs."""
        while path not in self.lines and ("." in path or "[" in path):
            path = path[: max(path.rfind("."), path.rfind("["))]
        return self.lines.get(path)

    def locate(self, path: str) -> str:
        """``line 7 ($['bird'].taxa[0])`` for CSV specs, the JSON path for JSON specs."""
        line = self.line_of(path)
        return f"line {line} ({path})" if line is not None else path

    def where(self, path: str) -> str:
        """``spec.csv line 7 (...)`` / ``spec.json $['bird'].taxa[0]``: for messages."""
        return f"{self.source} {self.locate(path)}"

    def datasets(self) -> set[str]:
        """Every dataset named explicitly anywhere in the spec."""
        out: set[str] = set()
        for rule in self.labels.values():
            for sel in (rule, rule.exclude):
                if sel is None:
                    continue
                out.update(sel.dataset_labels)
                for t in sel.taxa:
                    out.update(t.datasets or ())
            for group in rule.prioritize or ():
                out.update(group)
        return out


def label_path(label: str) -> str:
    """JSON path of a label's rule, e.g. ``$['bird']``."""
    return f"$[{label!r}]"


# ---------------------------------------------------------------- structuring (JSON)


def _strict_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    def as_str(v: Any, _: Any) -> str:
        if not isinstance(v, str):
            raise TypeError(f"expected a string, got {v!r}")
        return v

    def as_int(v: Any, _: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"expected an integer, got {v!r}")
        return v

    def list_factory(t: Any) -> Any:
        base = list_structure_factory(t, conv)

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, list):
                raise TypeError(f"expected a list, got {v!r}")
            return base(v, t)

        return hook

    conv.register_structure_hook(str, as_str)
    conv.register_structure_hook(int, as_int)
    conv.register_structure_hook_factory(is_sequence, list_factory)
    return conv


_converter = _strict_converter()


def _format_error(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s) {', '.join(sorted(exc.extra_fields))} — allowed: taxa, dataset_labels, exclude, max_count, prioritize"
    if isinstance(exc, TypeError | ValueError) and str(exc).startswith("expected"):
        return str(exc)
    name = getattr(type_, "__name__", None) or str(type_)
    if name in ("LabelRule", "Selector", "TaxonRef"):
        return "expected an object"
    return f"invalid value, expected {name}"


def spec_from_dict(
    data: Any, *, source: str = "<spec>", lines: dict[str, int] | None = None
) -> LabelSpec:
    """Build and check a spec from its JSON form; every problem is listed with its path."""
    if not isinstance(data, dict):
        raise FormatError(source, [Problem("$", "expected an object of label → rule")])
    try:
        labels = _converter.structure(data, dict[str, LabelRule])
    except cattrs.BaseValidationError as exc:
        problems = []
        for line in cattrs.transform_error(exc, path="$", format_exception=_format_error):
            message, _, path = line.rpartition(" @ ")
            problems.append(Problem(path, message))
        raise FormatError(source, problems) from None
    spec = LabelSpec(labels=labels, source=source, lines=dict(lines or {}))
    problems = check_spec(spec)
    if problems:
        raise FormatError(source, [_located(spec, p) for p in problems])
    return spec


def every_category_spec(categories: Iterable[object], dataset: str) -> LabelSpec:
    """A spec making each category name of ``dataset`` except ``empty`` a label of its own.

    Names are matched as selection matches them (stripped, lower case); the labels come
    out sorted. A dataset with nothing but ``empty`` has nothing to train on: an error.
    """
    names = sorted({str(n).strip().lower() for n in categories})
    labels = [n for n in names if n and n != "empty"]
    if not labels:
        raise CamtrapError(f"{dataset}: no category other than 'empty' to train on")
    return spec_from_dict(
        {n: {"dataset_labels": {dataset: [n]}} for n in labels}, source="every category"
    )


def _located(spec: LabelSpec, problem: Problem) -> Problem:
    return Problem(spec.locate(problem.path), problem.message, problem.hint, problem.severity)


def check_spec(spec: LabelSpec) -> list[Problem]:
    """Problems that need no taxonomy: empty rules, bad counts, unknown levels, bad names."""
    problems: list[Problem] = []
    add = problems.append
    if not spec.labels:
        add(Problem("$", "the spec defines no labels"))
    for label, rule in spec.labels.items():
        at = label_path(label)
        if not label.strip() or label != label.strip():
            add(Problem(at, "label names must be non-empty without surrounding spaces"))
        if label.startswith("!"):
            add(
                Problem(
                    at,
                    "label names cannot start with '!'",
                    "'!' only marks exclusions in the CSV syntax",
                )
            )
        if rule.is_empty():
            add(Problem(at, "selects nothing", "give it taxa or dataset_labels"))
        for key, sel in (("", rule), (".exclude", rule.exclude)):
            if sel is None:
                continue
            for i, t in enumerate(sel.taxa):
                tpath = f"{at}{key}.taxa[{i}]"
                if t.level.lower() not in KNOWN_LEVELS:
                    add(
                        Problem(
                            f"{tpath}.level",
                            f"unknown taxonomy level {t.level!r}",
                            did_you_mean(t.level.lower(), KNOWN_LEVELS),
                        )
                    )
                if not t.name.strip():
                    add(Problem(f"{tpath}.name", "empty taxon name"))
                if t.datasets is not None and not t.datasets:
                    add(
                        Problem(
                            f"{tpath}.datasets",
                            "empty list",
                            "leave datasets out to mean every dataset",
                        )
                    )
            for ds, names in sel.dataset_labels.items():
                if not ds.strip():
                    add(Problem(f"{at}{key}.dataset_labels", "empty dataset name"))
                for j, name in enumerate(names):
                    if not name.strip():
                        add(
                            Problem(f"{at}{key}.dataset_labels[{ds!r}][{j}]", "empty dataset label")
                        )
        if rule.max_count is not None and rule.max_count < 1:
            add(Problem(f"{at}.max_count", f"must be at least 1, got {rule.max_count}"))
        if rule.prioritize is not None:
            if rule.max_count is None:
                add(
                    Problem(
                        f"{at}.prioritize",
                        "has no effect without max_count",
                        "add max_count or remove prioritize",
                    )
                )
            seen: dict[str, int] = {}
            for i, group in enumerate(rule.prioritize):
                for ds in group:
                    if ds in seen:
                        add(
                            Problem(
                                f"{at}.prioritize[{i}]",
                                f"dataset {ds!r} is already in priority group {seen[ds]}",
                            )
                        )
                    seen[ds] = i
    return problems


def spec_to_dict(spec: LabelSpec) -> dict[str, Any]:
    """The spec in its JSON form (keys in the seed's order, empty parts left out)."""

    def selector(sel: Selector) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if sel.dataset_labels:
            out["dataset_labels"] = {ds: list(v) for ds, v in sel.dataset_labels.items()}
        if sel.taxa:
            out["taxa"] = [
                {
                    "level": t.level,
                    "name": t.name,
                    **({"datasets": list(t.datasets)} if t.datasets is not None else {}),
                }
                for t in sel.taxa
            ]
        return out

    result: dict[str, Any] = {}
    for label, rule in spec.labels.items():
        out = selector(rule)
        if rule.exclude is not None and not rule.exclude.is_empty():
            out["exclude"] = selector(rule.exclude)
        if rule.max_count is not None:
            out["max_count"] = rule.max_count
        if rule.prioritize is not None:
            out["prioritize"] = [list(g) for g in rule.prioritize]
        result[label] = out
    return result


# ---------------------------------------------------------------- CSV syntax


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank, non-comment row."""
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text))
    start = 1
    for fields in reader:
        line = start
        start = reader.line_num + 1
        first = lines[line - 1].strip() if line - 1 < len(lines) else ""
        if not first or first.startswith("#") or not any(f.strip() for f in fields):
            continue
        yield line, fields


def _parse_prioritize(content: str) -> list[list[str]]:
    try:
        value = ast.literal_eval(content)
    except (ValueError, SyntaxError):
        raise ValueError(
            f"prioritize {content!r} is not a list of lists of dataset names"
        ) from None
    if not isinstance(value, list | tuple) or not all(
        isinstance(g, list | tuple) and all(isinstance(d, str) for d in g) for g in value
    ):
        raise ValueError(
            f"prioritize {content!r} is not a list of lists of dataset names, e.g. \"[['ds1', 'ds2'], ['ds3']]\""
        )
    return [list(g) for g in value]


def _split(content: str, n: int, what: str) -> list[str]:
    parts = [p.strip() for p in content.split("|")]
    if len(parts) != n or not all(parts):
        raise ValueError(f"content {content!r} must be {what}")
    return parts


def spec_dict_from_csv(
    text: str, *, source: str = "<spec.csv>"
) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse the CSV syntax into the JSON form plus JSON path → line number.

    Raises ``FormatError`` listing every bad row with its line number.
    """
    js: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    count_lines: dict[tuple[str, str], int] = {}
    first = True
    for line, fields in _csv_rows(text):
        fields = [f.strip() for f in fields]
        if first and [f.lower() for f in fields] == list(CSV_HEADER):
            first = False
            continue
        first = False
        where = f"line {line}"
        if len(fields) != 3:
            problems.append(
                Problem(
                    where,
                    f"expected 3 fields (output_label,type,content), got {len(fields)}",
                    "quote content that contains commas",
                )
            )
            continue
        raw_label, rowtype, content = fields
        exclude = raw_label.startswith("!")
        label = raw_label[1:].strip() if exclude else raw_label
        rowtype = rowtype.lower()
        if not label:
            problems.append(Problem(where, "empty output_label"))
            continue
        rule = js.setdefault(label, {})
        at = label_path(label)
        lines.setdefault(at, line)
        target = rule.setdefault("exclude", {}) if exclude else rule
        base = f"{at}.exclude" if exclude else at
        try:
            if rowtype in ("max_count", "prioritize"):
                if exclude:
                    raise ValueError(
                        f"{rowtype} cannot be excluded ('!' only applies to taxa and rows)"
                    )
                if (label, rowtype) in count_lines:
                    raise ValueError(
                        f"{rowtype} for {label!r} already set on line {count_lines[label, rowtype]}"
                    )
                count_lines[label, rowtype] = line
                if rowtype == "max_count":
                    try:
                        rule["max_count"] = int(content)
                    except ValueError:
                        raise ValueError(f"max_count {content!r} is not an integer") from None
                else:
                    rule["prioritize"] = _parse_prioritize(content)
                lines[f"{at}.{rowtype}"] = line
            elif rowtype == "row":
                ds, ds_label = _split(content, 2, "dataset_name|dataset_label")
                names = target.setdefault("dataset_labels", {}).setdefault(ds, [])
                lines[f"{base}.dataset_labels[{ds!r}][{len(names)}]"] = line
                names.append(ds_label)
            elif rowtype == "datasettaxon":
                ds, level, name = _split(content, 3, "dataset_name|taxon_level|taxon_name")
                taxa = target.setdefault("taxa", [])
                lines[f"{base}.taxa[{len(taxa)}]"] = line
                taxa.append({"level": level, "name": name, "datasets": [ds]})
            elif rowtype in KNOWN_LEVELS:
                if not content:
                    raise ValueError(f"empty {rowtype} name")
                taxa = target.setdefault("taxa", [])
                lines[f"{base}.taxa[{len(taxa)}]"] = line
                taxa.append({"level": rowtype, "name": content})
            else:
                hint = did_you_mean(rowtype, (*SPECIAL_TYPES, *KNOWN_LEVELS))
                raise ValueError(
                    f"unknown type {rowtype!r} (expected row, datasettaxon, max_count, prioritize or a taxon level){' — ' + hint if hint else ''}"
                )
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
    if problems:
        raise FormatError(source, problems)
    return js, lines


# ---------------------------------------------------------------- files


def read_spec(path: str | os.PathLike[str]) -> LabelSpec:
    """Read a JSON or CSV label spec (chosen by suffix) and check it."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        try:
            text = p.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise CamtrapError(f"{p}: file not found") from None
        except UnicodeDecodeError:
            raise CamtrapError(f"{p}: not a UTF-8 text file") from None
        data, lines = spec_dict_from_csv(text, source=str(p))
        return spec_from_dict(data, source=str(p), lines=lines)
    return spec_from_dict(read_json(p), source=str(p))


def write_spec_json(
    spec: LabelSpec, path: str | os.PathLike[str], *, indent: int | None = 1
) -> None:
    """Write the spec's JSON form atomically."""
    write_json(path, spec_to_dict(spec), indent=indent)
