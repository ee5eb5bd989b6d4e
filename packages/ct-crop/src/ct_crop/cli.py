"""``ct-crop`` console script: crop boxes, run/cache a detector, analyze failed images."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer

from ct_crop.boxes import BoxSelection
from ct_crop.settings import CropSettings, RunOptions
from ct_io.cli_fields import options_from
from ct_io.cli_storage import IMAGE_ROOT_HELP, StorageOptionOpt, open_image_root
from ct_io.clitools import WORKERS_FLAGS, console, make_app, progress_bar, run_cli
from ct_io.engines import EngineChoice

app = make_app(
    "Crop ground-truth and detector boxes, run and cache detectors, analyze failed images."
)

ImagesDirOpt = Annotated[
    Path, typer.Option("--images-dir", "-i", help="Folder the image paths are relative to.")
]
ImageRootOpt = Annotated[
    str,
    typer.Option(
        "--images-dir",
        "-i",
        "--container-url",
        help=IMAGE_ROOT_HELP + " --container-url is the seed's name for an Azure container URL.",
    ),
]


def _fill(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(p) for p in text.replace(" ", "").split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3:
        from ct_io.errors import CamtrapError

        raise CamtrapError(f"--fill: {text!r} is not R,G,B or one grey value 0..255")
    return (parts[0], parts[1], parts[2])


@app.command()
@options_from(EngineChoice, into="engine")
@options_from(
    RunOptions,
    into="run",
    flags={"workers": WORKERS_FLAGS, "allow_truncated": ("--load-truncated/--no-load-truncated",)},
)
@options_from(
    CropSettings, into="settings", skip=("fill",), flags={"strategy": ("--strategy", "-s")}
)
@options_from(
    BoxSelection,
    into="boxes",
    flags={
        "threshold": ("--threshold", "-t"),
        "categories": ("--category", "-c"),
        "choice": ("--boxes",),
    },
)
def crop(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for the crops, crops.csv and crop_failures.csv.")
    ],
    images_dir: ImageRootOpt,
    cct: Annotated[
        Path | None,
        typer.Option(help="COCO Camera Traps JSON with ground-truth boxes (absolute pixels)."),
    ] = None,
    detections: Annotated[
        Path | None,
        typer.Option(
            "--detections", "-d", help="MegaDetector JSON with detector boxes (normalized)."
        ),
    ] = None,
    fill: Annotated[
        str, typer.Option(help="Fill colour R,G,B (or one grey value) for pad/center.")
    ] = "0,0,0",
    storage_option: StorageOptionOpt = None,
    *,
    boxes: dict[str, Any],
    settings: dict[str, Any],
    run: dict[str, Any],
    engine: dict[str, Any],
) -> None:
    """Crop ground-truth and/or detector boxes; rerun the same command to resume.

    Crops are named [bold]<image>___cropNN[_<detector>].jpg[/] (NN = the box's index in the
    image's list) and listed in OUT_DIR/crops.csv; images or boxes that could not be cropped
    are listed with a reason in OUT_DIR/crop_failures.csv.
    """
    from ct_crop.crop import crop_boxes
    from ct_io.md import read_md

    root = open_image_root(images_dir, storage_option)
    ground_truth = None
    if cct is not None:  # ct_io.cct loads pandas (~2 s here): only when a CCT is given
        from ct_io.cct import read_cct

        ground_truth = read_cct(cct)
    with progress_bar() as progress:
        summary = crop_boxes(
            root,
            out_dir,
            cct=ground_truth,
            md=read_md(detections) if detections is not None else None,
            boxes=BoxSelection(**boxes),
            settings=CropSettings(**settings, fill=_fill(fill)),
            options=RunOptions(**run),
            progress=progress,
            engine=EngineChoice(**engine),
        )
    console.print(
        f"[green]done[/] {summary.images} images: {summary.crops_made} crops made, {summary.crops_existing} already there; "
        f"{summary.images_failed} images failed, {summary.boxes_skipped} boxes skipped — {out_dir / 'crops.csv'}"
    )
    if summary.failures:
        console.print(
            f"[yellow]{len(summary.failures)} problems[/] listed in {out_dir / 'crop_failures.csv'} (see `ct-crop analyze-failures`)"
        )


@app.command()
@options_from(EngineChoice, into="engine")
def detect(
    images_dir: Annotated[str, typer.Argument(help=IMAGE_ROOT_HELP)],
    out: Annotated[
        Path, typer.Argument(help="MD JSON to write (detections for the chosen images).")
    ],
    detector: Annotated[
        str, typer.Option(help="Detector plugin name (`ct-io plugins` lists them).")
    ] = "megadetector",
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Detector option KEY=VALUE, e.g. model_file=md_v5a.0.0.pt (repeatable).",
        ),
    ] = None,
    cct: Annotated[
        Path | None,
        typer.Option(help="Detect only this CCT's images that have no ground-truth box."),
    ] = None,
    files: Annotated[
        Path | None, typer.Option(help="Text file of image paths (one per line) to detect.")
    ] = None,
    cache_dir: Annotated[
        Path,
        typer.Option(help="Detection cache folder (one MD JSON per detector version and dataset)."),
    ] = Path("mdcache"),
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset name in the cache (default: the images folder's name)."),
    ] = None,
    retry_failures: Annotated[
        bool, typer.Option(help="Detect again images that failed in the cache.")
    ] = False,
    import_json: Annotated[
        Path | None,
        typer.Option(
            "--import",
            help="MD JSON made elsewhere (batch service, another machine): cache it first; "
            "only images it lacks are detected.",
        ),
    ] = None,
    detector_version: Annotated[
        str | None,
        typer.Option(
            help="Cache version of --import (default: its info.detector, model file stem)."
        ),
    ] = None,
    every_n_frames: Annotated[
        int | None,
        typer.Option(
            "--every-n-frames",
            help="Video clips: detect every N-th frame (default 10, MegaDetector's usual).",
        ),
    ] = None,
    frames_per_second: Annotated[
        float | None,
        typer.Option(
            "--frames-per-second", help="Video clips: detect N frames per second instead."
        ),
    ] = None,
    storage_option: StorageOptionOpt = None,
    *,
    engine: dict[str, Any],
) -> None:
    """Run a detector on images lacking ground-truth boxes, caching results per detector version.

    Without --cct or --files, every image and video clip under IMAGES_DIR is detected. A clip
    is detected on its sampled frames and written as MegaDetector's per-video entry (the form
    Timelapse imports). A rerun reads the cache and only detects images it has never seen;
    OUT is then fed to `ct-crop crop --detections`.
    With --import, an existing MD JSON fills the cache first, and the detector is loaded
    only if some wanted image is still missing.
    """
    from ct_crop.detect import detect_cached, images_to_detect
    from ct_crop.detectors import get_detector
    from ct_crop.video_detect import sampling_from_options
    from ct_io.md import write_md
    from ct_io.options import parse_key_values

    sampling = sampling_from_options(every_n_frames, frames_per_second)
    root = open_image_root(images_dir, storage_option)
    wanted = images_to_detect(root, cct=cct, files=files)
    name = dataset or (
        root.resolve().name if isinstance(root, Path) else root.root.rstrip("/").rsplit("/", 1)[-1]
    )
    imported = None
    if import_json is not None:
        from ct_crop.detect_import import import_detections

        imported = import_detections(
            import_json, cache_dir, name, version=detector_version, wanted=wanted
        )
        console.print(imported.summary(), highlight=False)
        if not imported.missing and imported.results is not None:
            write_md(imported.results, out)
            console.print(
                f"[green]done[/] {len(imported.results.images)} images from the cache → {out}"
            )
            return
    detector_options = parse_key_values(option or [])
    det = get_detector(detector, detector_options)
    if imported is not None:
        from ct_crop.detect_import import check_same_version

        check_same_version(imported, str(det.version))
    with progress_bar() as progress:
        task = progress.add_task(f"detecting ({det.version})", total=None)
        results, new = detect_cached(
            det,
            root,
            wanted,
            cache_dir,
            dataset=name,
            retry_failures=retry_failures,
            on_image=lambda _: progress.advance(task),
            sampling=sampling,
            engine=EngineChoice(**engine),
            loader=functools.partial(get_detector, detector, detector_options),
            progress=progress,
        )
    write_md(results, out)
    failed = sum(1 for im in results.images if im.detections is None)
    console.print(
        f"[green]done[/] {len(results.images)} images ({new} detected now, {len(results.images) - new} from the cache, {failed} failed) → {out}"
    )


@app.command("analyze-failures")
def analyze_failures_cmd(
    log: Annotated[
        Path,
        typer.Argument(
            help="Failure log: crop_failures.csv, a JSON list/log, MD JSON, or one path per line."
        ),
    ],
    images_dir: ImagesDirOpt,
    out: Annotated[
        Path | None,
        typer.Option(
            help="CSV to write (image,status,reason). Default: LOG's folder/failure_analysis.csv."
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", "-k", help="For a JSON object log: the key(s) holding image lists."),
    ] = None,
    show: Annotated[int, typer.Option(help="List at most this many images per status.")] = 10,
) -> None:
    """Check failed images again: good / nonexistent / non_image / truncated / bad."""
    from rich.table import Table

    from ct_crop.analyze import STATUSES, analyze_failures, counts, read_failed_list, write_verdicts

    images = read_failed_list(log, key or ())
    verdicts = analyze_failures(images, images_dir)
    target = out or log.parent / "failure_analysis.csv"
    write_verdicts(verdicts, target)
    table = Table(title=f"{len(verdicts)} images from {log.name}")
    for col in ("status", "images", "examples"):
        table.add_column(col)
    for status, n in counts(verdicts).items():
        examples = [
            f"{v.image}{' — ' + v.reason if v.reason else ''}"
            for v in verdicts
            if v.status == status
        ][:show]
        table.add_row(status, str(n), "\n".join(examples))
    console.print(table)
    console.print(f"statuses: {', '.join(STATUSES)} → {target}")


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
