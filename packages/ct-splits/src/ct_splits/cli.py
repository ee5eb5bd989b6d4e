"""``ct-splits`` console script: ``dataset``, ``split`` and ``report``."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ct_io.clitools import console, make_app, run_cli
from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    from ct_splits.splitting import SplitResult

log = logging.getLogger(__name__)

app = make_app("Classification dataset table, leakage-free location splits and the dataset report.")

DATASET_FILENAME = "classification_ds.csv"
LABEL_INDEX_FILENAME = "label_index.json"
SPLITS_FILENAME = "splits.json"


class Pseudo(StrEnum):
    sequence = "sequence"
    dataset = "dataset"
    image = "image"


class MethodName(StrEnum):
    random = "random"
    smallest_first = "smallest_first"


def _table_path(data: Path) -> Path:
    """A folder holding classification_ds.csv, or the CSV itself."""
    return data / DATASET_FILENAME if data.is_dir() else data


@app.command()
def dataset(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for classification_ds.csv and label_index.json.")
    ],
    crops_dir: Annotated[
        Path,
        typer.Option(
            "--crops-dir",
            "-c",
            help="The crops folder (holds crops.csv unless --manifest says otherwise).",
        ),
    ],
    queried_images: Annotated[
        Path | None,
        typer.Option("--queried-images", "-q", help="queried_images.json from image selection."),
    ] = None,
    cct: Annotated[
        Path | None,
        typer.Option(help="A COCO Camera Traps file instead of queried_images.json."),
    ] = None,
    dataset_name: Annotated[
        str | None,
        typer.Option(
            help="Dataset name for --cct (default: the file name without .json and _cct)."
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="Crops manifest (default: CROPS_DIR/crops.csv)."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", "-t", help="Drop detector crops below this confidence.")
    ] = 0.8,
    min_locs: Annotated[
        int | None,
        typer.Option(
            help="Drop labels seen at fewer than N locations (3 is the minimum for three splits)."
        ),
    ] = None,
    match_test: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            metavar="CSV SPLITS",
            help="Reuse an earlier test set: append its test crops, drop ours at those locations.",
        ),
    ] = None,
    pseudo: Annotated[
        Pseudo,
        typer.Option(
            "--pseudo-locations",
            help="Images without a location share a pseudo-location per sequence, per dataset, or per image.",
        ),
    ] = Pseudo.sequence,
    detector_category: Annotated[
        list[str] | None,
        typer.Option(help="Detector box categories to keep (repeatable; default animal)."),
    ] = None,
    check_files: Annotated[
        bool,
        typer.Option("--check-files/--no-check-files", help="Skip crops whose file is missing."),
    ] = True,
) -> None:
    """Build classification_ds.csv and label_index.json from selected images and their crops."""
    from ct_io.tables import write_classification_ds, write_label_index
    from ct_splits import dataset as ds_mod
    from ct_splits.manifest import read_crops_manifest

    images = ds_mod.image_table(
        queried_images=queried_images, cct=cct, dataset_name=dataset_name, pseudo=pseudo.value
    )
    frame, report = ds_mod.build_dataset(
        images,
        read_crops_manifest(manifest or crops_dir / "crops.csv"),
        threshold=threshold,
        crops_dir=crops_dir if check_files else None,
        detector_categories=tuple(detector_category or ds_mod.DETECTOR_CATEGORIES),
        gt_category_is_label=cct is not None,
    )
    frame = ds_mod.finish_dataset(frame, report, min_locs=min_locs, match_test_files=match_test)
    labels = ds_mod.label_names(frame)
    write_classification_ds(frame, out_dir / DATASET_FILENAME)
    write_label_index(labels, out_dir / LABEL_INDEX_FILENAME)
    for line in report.lines():
        console.print(f"[yellow]•[/] {line}", highlight=False)
    n_locs = (frame["dataset"] + "\x1f" + frame["location"]).nunique()
    console.print(
        f"[green]wrote[/] {out_dir / DATASET_FILENAME}: {len(frame):,} crops, {len(labels)} labels, {n_locs:,} locations"
    )


@app.command()
def split(
    data: Annotated[Path, typer.Argument(help="classification_ds.csv or the folder holding it.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="splits.json to write (default: next to the table)."),
    ] = None,
    method: Annotated[
        MethodName,
        typer.Option(
            help="random: best of many random splits; smallest_first: greedy by label size."
        ),
    ] = MethodName.random,
    val_frac: Annotated[float, typer.Option(help="Target fraction for val.")] = 0.2,
    test_frac: Annotated[
        float | None,
        typer.Option(help="Target fraction for test (default 0.2, or 0 with --match-test)."),
    ] = None,
    trials: Annotated[int, typer.Option(help="Random trials (random method).")] = 10_000,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same splits.json.")
    ] = 0,
    optimize: Annotated[
        bool | None,
        typer.Option(
            "--optimize/--no-optimize",
            help="Improve the split by local search (default: on for random).",
        ),
    ] = None,
    distribution_weight: Annotated[
        float,
        typer.Option(
            help="Weight of animl-ml's val/test class-distribution term (animl-ml uses 2; 0 = MegaDetector's score)."
        ),
    ] = 0.0,
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            help="Keep together what shares this key: location, sequence, camera, site or a column (repeatable; default location + sequence)."
        ),
    ] = None,
    site_separator: Annotated[
        str,
        typer.Option(
            help="For --group-by site without a site column: the site is the location up to this separator."
        ),
    ] = "/",
    label_spec: Annotated[
        Path | None,
        typer.Option(
            help="smallest_first: label spec JSON whose 'prioritize' lists datasets to put in test/val first."
        ),
    ] = None,
    prioritize: Annotated[
        list[str] | None,
        typer.Option(
            help="smallest_first: comma-separated datasets, one priority level per use (for every label)."
        ),
    ] = None,
    match_test: Annotated[
        Path | None,
        typer.Option(help="Reuse the test split of an earlier splits.json."),
    ] = None,
    cct: Annotated[
        Path | None,
        typer.Option(
            help="Also write train_cct.json, val_cct.json, test_cct.json from this CCT file."
        ),
    ] = None,
    cct_dataset: Annotated[
        str | None,
        typer.Option(help="Dataset name of --cct (default: the table's only dataset)."),
    ] = None,
) -> None:
    """Split the dataset table into train/val/test by location and write splits.json."""
    from rich.progress import Progress

    from ct_io.tables import read_classification_ds, read_splits, write_splits
    from ct_splits.scoring import ScoreWeights
    from ct_splits.smallest_first import read_prioritize
    from ct_splits.splitting import SplitOptions, make_splits

    table_path = _table_path(data)
    frame = read_classification_ds(table_path)
    test_locations = read_splits(match_test).test if match_test is not None else None
    prio = read_prioritize(label_spec, prioritize or [])
    if prio is not None and method != MethodName.smallest_first:
        raise CamtrapError("--label-spec and --prioritize need --method smallest_first")
    options = SplitOptions(
        method=method.value,
        val_frac=val_frac,
        test_frac=(0.0 if match_test is not None else 0.2) if test_frac is None else test_frac,
        trials=trials,
        seed=seed,
        optimize=optimize,
        weights=ScoreWeights(distribution=distribution_weight),
        group_by=tuple(group_by) if group_by else SplitOptions().group_by,
        site_separator=site_separator,
        prioritize=prio,
    )
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("random trials", total=trials if method == MethodName.random else None)
        result = make_splits(
            frame, options, test_locations=test_locations, progress=lambda n: bar.advance(task, n)
        )
    out = out or table_path.parent / SPLITS_FILENAME
    write_splits(result.splits, out)
    _print_split(result, out)
    if cct is not None:
        from ct_io.cct import read_cct
        from ct_splits.split_cct import table_dataset, write_split_ccts

        name = table_dataset(frame, cct_dataset)
        counts = write_split_ccts(read_cct(cct), name, result.splits, out.parent, frame)
        console.print(
            f"[green]wrote[/] per-split CCT files in {out.parent}: "
            + ", ".join(f"{k} {v:,} images" for k, v in counts.items()),
            highlight=False,
        )


def _print_split(result: SplitResult, out: Path) -> None:
    """The score and time of each search stage, and the locations per split."""
    for stage in result.stages:
        console.print(
            f"{stage.name}: score {stage.score:.6f} in {stage.seconds:.2f} s", highlight=False
        )
    sizes = ", ".join(f"{name} {len(locs):,}" for name, locs in result.splits.as_dict().items())
    console.print(f"[green]wrote[/] {out}: locations {sizes}", highlight=False)


@app.command()
def report(
    data: Annotated[Path, typer.Argument(help="classification_ds.csv or the folder holding it.")],
    splits_path: Annotated[
        Path | None, typer.Option("--splits", help="splits.json (default: next to the table).")
    ] = None,
    crops_dir: Annotated[
        Path | None,
        typer.Option(
            "--crops-dir", "-c", help="The crops folder, for the sample images in the HTML page."
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for report.csv and report.html (default: next to the table).",
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Sample crops per label in the HTML page.")] = 8,
    tolerance: Annotated[
        float, typer.Option(help="Flag fractions further than this from the target.")
    ] = 0.1,
    val_frac: Annotated[
        float | None,
        typer.Option(help="Target val fraction (default: val's share of all crops)."),
    ] = None,
    test_frac: Annotated[
        float | None,
        typer.Option(help="Target test fraction (default: test's share of all crops)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the sample crops.")] = 0,
) -> None:
    """Report crops and locations per split and label, flag extremes, and write CSV + HTML."""
    from ct_io.tables import read_classification_ds, read_splits, write_csv
    from ct_splits.report import build_report, sample_crops
    from ct_splits.report_html import render_html, write_html
    from ct_splits.report_table import print_report
    from ct_splits.scoring import Targets

    table_path = _table_path(data)
    frame = read_classification_ds(table_path)
    splits = read_splits(splits_path or table_path.parent / SPLITS_FILENAME)
    targets = None
    if val_frac is not None or test_frac is not None:
        targets = Targets.from_fractions(val_frac or 0.0, test_frac or 0.0)
    rep = build_report(frame, splits, targets=targets, tolerance=tolerance)
    out = out_dir or table_path.parent
    write_csv(rep.per_label, out / "report.csv")
    picks = sample_crops(frame, samples, seed) if samples > 0 else None
    write_html(out / "report.html", render_html(rep, picks, crops_dir))
    print_report(rep)
    console.print(f"[green]wrote[/] {out / 'report.csv'} and {out / 'report.html'}")


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
