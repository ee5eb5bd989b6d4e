"""Sum a classifier-output CSV's probabilities into target categories, streaming.

Input: the classifier's CSV (optionally gzipped): some columns of its own (``path``,
``label``, ``weight`` …) and one probability column per classifier label. Output: the
same rows with the own columns unchanged, then one column per target holding the sum of
its classifier labels' probabilities, optionally followed by the rollup columns
(:mod:`ct_taxonomy.rollup`). The file is read and written in chunks, so memory stays
flat however many crops there are, and the output appears atomically when complete.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from attrs import define

from ct_io.atomic import atomic_open
from ct_io.errors import CamtrapError
from ct_io.tables import write_label_index
from ct_taxonomy.rollup import ROLLUP_COLUMNS, Lineage, rollup_array
from ct_taxonomy.suggest import did_you_mean

DEFAULT_CHUNK_ROWS = 100_000
#: Probabilities are written with 7 significant digits (0.97, not 0.9700000000000001).
FLOAT_FORMAT = "%.7g"


@define
class RollupConfig:
    """Rollup settings: the threshold and the lineage of each output column."""

    threshold: float
    lineages: Mapping[str, Lineage]


def output_columns(
    target_mapping: str | os.PathLike[str] | None, label_index: str | os.PathLike[str] | None
) -> dict[str, list[str]]:
    """Output column → classifier labels: a target mapping (``ct-taxonomy map``; with a
    label index, every label must be in a target), or each label of the index alone."""
    from ct_io.tables import read_label_index
    from ct_taxonomy.mapping import read_target_mapping

    if target_mapping is None:
        if label_index is None:
            raise CamtrapError(
                "give --target-mapping (from `ct-taxonomy map`) or --label-index (to only roll up)"
            )
        return {lb: [lb] for lb in read_label_index(label_index)}
    mapping = read_target_mapping(target_mapping)
    mapped = {lb for labels in mapping.values() for lb in labels}
    unmapped = sorted(set(read_label_index(label_index)) - mapped) if label_index else []
    if unmapped:
        raise CamtrapError(
            f"{target_mapping}: classifier label(s) {', '.join(unmapped[:5])} are in no target"
            " — rebuild it with `ct-taxonomy map`"
        )
    return mapping


def rollup_config(
    threshold: float,
    columns: Sequence[str],
    taxonomy: str | os.PathLike[str] | None,
    rollup_spec: str | os.PathLike[str] | None = None,
) -> RollupConfig:
    """Rollup of ``columns``: their lineages in the taxonomy, from the label spec of the
    columns or, without one, from the column names."""
    from ct_taxonomy.rollup import name_lineages, spec_lineages
    from ct_taxonomy.spec import read_spec
    from ct_taxonomy.taxonomy import read_taxonomy

    if taxonomy is None:
        raise CamtrapError("--rollup needs --taxonomy to know which taxa contain which labels")
    tax = read_taxonomy(taxonomy)
    lineages = (
        spec_lineages(read_spec(rollup_spec), tax)
        if rollup_spec is not None
        else name_lineages(list(columns), tax)
    )
    if not any(lineages.get(c) for c in columns):
        raise CamtrapError(
            "--rollup: no output column has a lineage in the taxonomy"
            " — pass --rollup-spec with the spec of the output columns"
        )
    return RollupConfig(threshold=threshold, lineages=lineages)


@define
class Aggregation:
    """The plan: which input columns feed which target."""

    targets: list[str]
    labels: list[str]
    matrix: np.ndarray  # labels × targets, 1 where the label belongs to the target

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Sequence[str]]) -> Aggregation:
        targets = list(mapping)
        labels = [lb for t in targets for lb in mapping[t]]
        if len(set(labels)) != len(labels):
            dup = sorted({lb for lb in labels if labels.count(lb) > 1})
            raise CamtrapError(
                f"classifier label(s) {', '.join(dup)} are mapped to more than one target — each belongs to exactly one"
            )
        matrix = np.zeros((len(labels), len(targets)))
        row = {lb: i for i, lb in enumerate(labels)}
        for j, t in enumerate(targets):
            for lb in mapping[t]:
                matrix[row[lb], j] = 1.0
        return cls(targets=targets, labels=labels, matrix=matrix)


def aggregate_frame(
    frame: pd.DataFrame,
    plan: Aggregation,
    rollup: RollupConfig | None = None,
    *,
    first_line: int = 2,
    source: str = "<csv>",
) -> pd.DataFrame:
    """One chunk: own columns unchanged, then target sums (and rollup columns)."""
    probs = _probabilities(frame, plan.labels, first_line, source)
    sums = probs @ plan.matrix
    own = [c for c in frame.columns if c not in set(plan.labels)]
    out = frame[own].copy()
    clash = [t for t in plan.targets if t in out.columns]
    if clash:
        raise CamtrapError(
            f"{source}: target name(s) {', '.join(clash)} are also columns of the input — rename the targets"
        )
    out = pd.concat([out, pd.DataFrame(sums, columns=plan.targets, index=frame.index)], axis=1)
    if rollup is not None:
        names, levels, confs = rollup_array(sums, plan.targets, rollup.lineages, rollup.threshold)
        out[ROLLUP_COLUMNS[0]], out[ROLLUP_COLUMNS[1]], out[ROLLUP_COLUMNS[2]] = (
            names,
            levels,
            confs,
        )
    return out


def _probabilities(
    frame: pd.DataFrame, labels: Sequence[str], first_line: int, source: str
) -> np.ndarray:
    values = frame[list(labels)]
    numeric = values.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        value = values.iat[int(r), int(c)]
        shown = "empty" if pd.isna(value) else repr(value)
        raise CamtrapError(
            f"{source} line {first_line + int(r)}: column {labels[int(c)]!r} is {shown}, not a probability"
        )
    return numeric.to_numpy(dtype=float)


def check_columns(columns: Sequence[str], labels: Sequence[str], source: str) -> None:
    """Every mapped classifier label must be a column of the input."""
    missing = [lb for lb in labels if lb not in columns]
    if missing:
        hint = did_you_mean(missing[0], columns)
        raise CamtrapError(
            f"{source}: no column for classifier label(s) {', '.join(map(repr, missing[:5]))}{' — ' + hint if hint else ''} (is the mapping for this classifier?)"
        )


def aggregate_csv(
    input_csv: str | os.PathLike[str],
    output_csv: str | os.PathLike[str],
    mapping: Mapping[str, Sequence[str]],
    *,
    output_label_index: str | os.PathLike[str] | None = None,
    rollup: RollupConfig | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Aggregate ``input_csv`` into ``output_csv`` chunk by chunk; returns the row count.

    ``.gz`` suffixes are read and written gzipped. The new label index lists the targets
    in mapping order.
    """
    src = Path(input_csv)
    if not src.is_file():
        raise CamtrapError(f"{src}: file not found")
    plan = Aggregation.from_mapping(mapping)
    try:
        header = [str(c) for c in pd.read_csv(src, nrows=0).columns]
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        OSError,
        EOFError,
    ) as exc:
        raise CamtrapError(f"{src}: cannot read CSV ({exc})") from None
    check_columns(header, plan.labels, str(src))
    own = {c: str for c in header if c not in set(plan.labels)}
    rows = 0
    wrote_header = False
    with atomic_open(output_csv, "wb") as raw, _TextWriter(raw, str(output_csv)) as fh:
        try:
            reader = pd.read_csv(
                src,
                chunksize=max(1, chunk_rows),
                dtype=own,
                keep_default_na=False,
                na_values={lb: [""] for lb in plan.labels},
            )
            for chunk in reader:
                out = aggregate_frame(chunk, plan, rollup, first_line=rows + 2, source=str(src))
                fh.write(
                    out.to_csv(header=not wrote_header, index=False, float_format=FLOAT_FORMAT)
                )
                wrote_header = True
                rows += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
        except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, ValueError) as exc:
            raise CamtrapError(
                f"{src}: cannot read CSV after row {rows} ({exc}) — is the file truncated?"
            ) from None
        if not wrote_header:
            empty = aggregate_frame(
                pd.DataFrame(
                    {c: pd.Series(dtype=float if c in plan.labels else object) for c in header}
                ),
                plan,
                rollup,
            )
            empty.to_csv(fh, index=False)
    if output_label_index is not None:
        write_label_index(plan.targets, output_label_index)
    return rows


class _TextWriter:
    """A text stream over ``raw``, gzipped (without a timestamp) when ``name`` ends in .gz."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._gz = (
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6)
            if name.endswith(".gz")
            else None
        )
        self._text = io.TextIOWrapper(
            self._gz if self._gz is not None else raw, encoding="utf-8", newline=""
        )

    def __enter__(self) -> IO[str]:
        return self._text

    def __exit__(self, *exc: Any) -> None:
        self._text.flush()
        self._text.detach()
        if self._gz is not None:
            self._gz.close()
