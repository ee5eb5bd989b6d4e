"""``ct-taxonomy``: label specs, selecting training images, mapping classifier outputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ct_io.clitools import EXIT_PROBLEMS, console, make_app, run_cli

if TYPE_CHECKING:
    from ct_taxonomy.select import NamedDataset
    from ct_taxonomy.taxonomy import Taxonomy

app = make_app("Label specifications, the taxonomy table, image selection and category mapping.")

TaxonomyOpt = Annotated[
    Path | None,
    typer.Option(
        "--taxonomy",
        "-t",
        help="Taxonomy CSV: LILA's taxonomy mapping or all-images table (.csv/.csv.gz/.csv.zip).",
    ),
]
DatasetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dataset",
        "-d",
        help="A CCT dataset as NAME=PATH (or PATH: name from the file stem). Repeatable.",
    ),
]


def _taxonomy(path: Path | None) -> Taxonomy | None:
    from ct_taxonomy.taxonomy import read_taxonomy

    return read_taxonomy(path) if path is not None else None


def _datasets(specs: list[str] | None) -> list[NamedDataset]:
    from ct_io.cct import read_cct
    from ct_io.errors import CamtrapError
    from ct_taxonomy.select import NamedDataset

    out = []
    for item in specs or []:
        name, sep, path = item.partition("=")
        if not sep:
            from ct_io.sources.common import dataset_name_from_file

            name, path = dataset_name_from_file(Path(item)), item
        if not name.strip() or not path.strip():
            raise CamtrapError(f"--dataset {item!r}: expected NAME=PATH")
        out.append(NamedDataset(name=name.strip(), cct=read_cct(path)))
    return out


@app.command("spec-to-json")
def spec_to_json(
    spec_csv: Annotated[
        Path, typer.Argument(help="Label spec in the CSV syntax (output_label,type,content).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="JSON file to write [default: SPEC_CSV with .json]."),
    ] = None,
    indent: Annotated[int, typer.Option(help="JSON indent (0 for one line).")] = 1,
) -> None:
    """Convert a CSV label spec to the JSON syntax (the seed's csv_to_json.py)."""
    from ct_taxonomy.spec import read_spec, write_spec_json

    spec = read_spec(spec_csv)
    out = output or spec_csv.with_suffix(".json")
    write_spec_json(spec, out, indent=indent or None)
    console.print(f"[green]wrote[/] {out} ({len(spec.labels)} labels)")


@app.command()
def validate(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Label spec (.json or .csv).")],
    taxonomy: TaxonomyOpt = None,
    dataset: DatasetOpt = None,
    allow_multilabel: Annotated[
        bool, typer.Option(help="Overlapping labels are warnings, not errors.")
    ] = False,
    ignore_missing_datasets: Annotated[
        bool, typer.Option(help="Datasets the spec names but that were not given are warnings.")
    ] = False,
) -> None:
    """Check a spec: known taxa and dataset labels (with near matches), labels that overlap.

    With --dataset, dataset names and labels are checked against those CCT files;
    otherwise against the taxonomy. Exits 1 when there are errors.
    """
    from ct_taxonomy.resolve import resolve_spec
    from ct_taxonomy.spec import read_spec
    from ct_taxonomy.summary import problems_table, resolution_table

    spec = read_spec(spec_path)
    tax = _taxonomy(taxonomy)
    cats = None
    if dataset:
        cats = {
            d.name.lower(): {str(n).strip().lower() for n in d.cct.categories["name"].tolist()}
            for d in _datasets(dataset)
        }
    res = resolve_spec(
        spec,
        tax,
        dataset_categories=cats,
        allow_multilabel=allow_multilabel,
        ignore_missing_datasets=ignore_missing_datasets,
    )
    console.print(resolution_table(res))
    if res.problems:
        console.print(problems_table(res.problems))
    if res.errors:
        console.print(f"[red]{spec_path}: {len(res.errors)} error(s)[/]")
        sys.exit(
            EXIT_PROBLEMS
        )  # not typer.Exit: run_cli runs click non-standalone, which swallows its code
    console.print(
        f"[green]{spec_path}: ok[/] ({len(spec.labels)} labels, {len(res.warnings)} warning(s))"
    )


@app.command()
def select(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Label spec (.json or .csv).")],
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir", "-o", help="Folder for queried_images.json and selection_report.json."
        ),
    ],
    dataset: DatasetOpt = None,
    taxonomy: TaxonomyOpt = None,
    mislabeled: Annotated[
        Path | None,
        typer.Option(
            help="Folder of known-mislabeled lists, <dataset>.csv with columns file,correct_class (empty: drop)."
        ),
    ] = None,
    allow_multilabel: Annotated[
        bool,
        typer.Option(help="Keep images whose classes give several labels (label lists them all)."),
    ] = False,
    ignore_missing_datasets: Annotated[
        bool, typer.Option(help="Skip spec entries for datasets that were not given.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed for max_count sampling.")] = 123,
) -> None:
    """Select every image the spec describes from CCT datasets, one label each.

    Writes OUTPUT_DIR/queried_images.json (with ground-truth boxes, normalized, where the
    CCT has them) and OUTPUT_DIR/selection_report.json (counts, conflicts, corrections).
    """
    from ct_io.errors import CamtrapError
    from ct_io.jsonio import write_json
    from ct_io.tables import write_queried_images
    from ct_taxonomy.mislabeled import read_mislabeled_dir
    from ct_taxonomy.select import SpecError, select_images, selection_report
    from ct_taxonomy.spec import read_spec
    from ct_taxonomy.summary import problems_table, selection_summary

    if not dataset:
        raise CamtrapError(
            "select needs at least one --dataset NAME=PATH (a COCO Camera Traps file)"
        )
    spec = read_spec(spec_path)
    tax = _taxonomy(taxonomy)
    named = _datasets(dataset)
    fixes = (
        read_mislabeled_dir(mislabeled, [d.name for d in named]) if mislabeled is not None else None
    )
    try:
        selection = select_images(
            spec,
            named,
            tax,
            mislabeled=fixes,
            allow_multilabel=allow_multilabel,
            ignore_missing_datasets=ignore_missing_datasets,
            seed=seed,
        )
    except SpecError as exc:
        console.print(problems_table(exc.problems))
        raise
    write_queried_images(selection.images, output_dir / "queried_images.json")
    write_json(output_dir / "selection_report.json", selection_report(selection, seed=seed))
    if selection.resolution.warnings:
        console.print(problems_table(selection.resolution.warnings))
    console.print(selection_summary(selection))
    console.print(
        f"[green]wrote[/] {output_dir / 'queried_images.json'} ({len(selection.images):,} images)"
    )


@app.command("map")
def map_command(
    target_spec: Annotated[
        Path, typer.Argument(help="Label spec of the categories you want (.json or .csv).")
    ],
    classifier_spec: Annotated[
        Path, typer.Argument(help="The classifier's own label spec (.json or .csv).")
    ],
    taxonomy: Annotated[
        Path, typer.Option("--taxonomy", "-t", help="Taxonomy CSV both specs refer to.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="target → classifier labels JSON to write.")
    ],
    classifier_label_index: Annotated[
        Path | None,
        typer.Option(
            "--classifier-label-index",
            "-i",
            help="The classifier's label_index.json, when it outputs only some labels of its spec.",
        ),
    ] = None,
) -> None:
    """Map each classifier label to exactly one target category (unclaimed ones: 'other')."""
    from rich.table import Table

    from ct_io.tables import read_label_index
    from ct_taxonomy.mapping import map_targets, write_target_mapping
    from ct_taxonomy.spec import read_spec
    from ct_taxonomy.taxonomy import read_taxonomy

    tspec, cspec = read_spec(target_spec), read_spec(classifier_spec)
    index = read_label_index(classifier_label_index) if classifier_label_index is not None else None
    mapping = map_targets(tspec, cspec, read_taxonomy(taxonomy), index)
    write_target_mapping(mapping, output)
    table = Table(title="targets → classifier labels")
    table.add_column("target")
    table.add_column("classifier labels", justify="right")
    table.add_column("labels")
    for target, labels in mapping.items():
        shown = ", ".join(labels[:6]) + (" …" if len(labels) > 6 else "")
        table.add_row(
            target, f"[yellow]{len(labels)}[/]" if not labels else str(len(labels)), shown
        )
    console.print(table)
    console.print(f"[green]wrote[/] {output}")


@app.command()
def aggregate(
    classifier_output: Annotated[
        Path,
        typer.Argument(
            help="Classifier output CSV (.csv or .csv.gz): own columns + one probability column per label."
        ),
    ],
    output_csv: Annotated[Path, typer.Option(help="CSV to write (.gz to gzip).")],
    target_mapping: Annotated[
        Path | None,
        typer.Option(
            "--target-mapping", "-m", help="target → classifier labels JSON from `ct-taxonomy map`."
        ),
    ] = None,
    label_index: Annotated[
        Path | None,
        typer.Option(
            help="The classifier's label_index.json (without --target-mapping: the probability columns)."
        ),
    ] = None,
    output_label_index: Annotated[
        Path | None,
        typer.Option(help="label_index.json of the output columns to write."),
    ] = None,
    rollup: Annotated[
        float | None,
        typer.Option(
            help="Add rollup_label/level/conf: the best label if it clears this, else the lowest taxon whose summed probability does.",
            min=0.0,
            max=1.0,
        ),
    ] = None,
    taxonomy: TaxonomyOpt = None,
    rollup_spec: Annotated[
        Path | None,
        typer.Option(
            help="Label spec of the output columns (lineages for --rollup); default: look the column names up in the taxonomy."
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows per chunk (memory vs speed).", min=1)
    ] = 100_000,
) -> None:
    """Sum classifier probabilities into target categories, streaming (large CSV.gz files)."""
    from rich.progress import Progress

    from ct_taxonomy.aggregate import aggregate_csv, output_columns, rollup_config

    mapping = output_columns(target_mapping, label_index)
    config = None if rollup is None else rollup_config(rollup, list(mapping), taxonomy, rollup_spec)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("aggregating", total=None)
        rows = aggregate_csv(
            classifier_output,
            output_csv,
            mapping,
            output_label_index=output_label_index,
            rollup=config,
            chunk_rows=chunk_rows,
            on_chunk=lambda n: progress.advance(task, n),
        )
    console.print(
        f"[green]wrote[/] {output_csv} ({rows:,} rows, {len(mapping)} target columns{', rollup' if config else ''})"
    )
    if output_label_index is not None:
        console.print(f"[green]wrote[/] {output_label_index}")


@app.command()
def taxa(
    taxonomy: Annotated[Path, typer.Argument(help="Taxonomy CSV.")],
    name: Annotated[
        str,
        typer.Argument(help="Scientific or common name of a taxon, e.g. canidae or 'gray fox'."),
    ],
    level: Annotated[
        str | None, typer.Option(help="Only taxa of this level (e.g. family).")
    ] = None,
) -> None:
    """Look a taxon up: its lineage, children, and the dataset labels under it."""
    from rich.table import Table

    from ct_io.errors import CamtrapError
    from ct_taxonomy.suggest import did_you_mean
    from ct_taxonomy.taxonomy import read_taxonomy

    tax = read_taxonomy(taxonomy)
    found = tax.find(name, level)
    if not found:
        hint = did_you_mean(name, {t.name for t in tax.taxa})
        raise CamtrapError(
            f"no taxon {name!r}{' at level ' + level if level else ''} in {taxonomy}{' — ' + hint if hint else ''}"
        )
    for taxon in found:
        console.print(f"[bold]{taxon}[/]: " + " > ".join(str(t) for t in tax.lineage(taxon)))
        children = sorted(tax.children(taxon))
        if children:
            console.print(
                "  children: "
                + ", ".join(str(c) for c in children[:20])
                + (" …" if len(children) > 20 else "")
            )
        rows = tax.rows_under(taxon)
        table = Table(title=f"{len(rows):,} dataset label(s) under {taxon}")
        for col in ("dataset_name", "query", "scientific_name", "taxonomy_level"):
            table.add_column(col)
        for r in rows.head(30).itertuples(index=False):
            table.add_row(r.dataset_name, r.query, r.scientific_name, r.taxonomy_level)
        console.print(table)


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
