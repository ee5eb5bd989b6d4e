"""``ct-crop`` console script: crop boxes, run/cache a detector, analyze failed images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import console, run_cli, setup_logging

app = typer.Typer(
    help="Crop ground-truth and detector boxes, run and cache detectors, analyze failed images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
)

STRATEGIES = ("square", "pad", "tight", "center")
EXIF_MODES = ("megadetector", "full", "none")
BOX_CHOICES = ("auto", "gt", "detector", "both")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    setup_logging(verbose)


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        from ct_io.errors import CamtrapError

        raise CamtrapError(f"{option}: {value!r} is not one of {', '.join(allowed)}")
    return value


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
def crop(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for the crops, crops.csv and crop_failures.csv.")
    ],
    images_dir: Annotated[
        Path, typer.Option("--images-dir", "-i", help="Folder the image paths are relative to.")
    ],
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
    threshold: Annotated[
        float,
        typer.Option("--threshold", "-t", help="Crop detector boxes with confidence >= this."),
    ] = 0.2,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            "-c",
            help="Detection category (name or id) to crop; repeatable. Default: animal.",
        ),
    ] = None,
    boxes: Annotated[
        str,
        typer.Option(
            help="auto: ground truth where an image has any, else detector boxes; gt; detector; both."
        ),
    ] = "auto",
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            "-s",
            help="square (tightest square, kept inside the image), pad (box on a square of --fill), tight (box as is), center (square centred on the box, outside filled).",
        ),
    ] = "square",
    margin: Annotated[
        float,
        typer.Option(
            help="Context around the box, as a fraction of its size on each side (0.1 = 10 %)."
        ),
    ] = 0.0,
    min_size: Annotated[
        int, typer.Option(help="Skip boxes narrower or shorter than this many pixels.")
    ] = 0,
    size: Annotated[
        int | None,
        typer.Option(
            help="Shrink crops so the longest side is at most this many pixels (Lanczos; JPEG decoded at reduced size when every crop allows). Default: full resolution."
        ),
    ] = None,
    upscale: Annotated[
        bool,
        typer.Option(
            help="With --size, also enlarge smaller crops so every crop's longest side is exactly the size."
        ),
    ] = False,
    quality: Annotated[int, typer.Option(help="JPEG quality of the crops (1-100).")] = 95,
    fill: Annotated[
        str, typer.Option(help="Fill colour R,G,B (or one grey value) for pad/center.")
    ] = "0,0,0",
    exif: Annotated[
        str,
        typer.Option(
            help="EXIF orientation: megadetector (as MegaDetector saw the image), full, none."
        ),
    ] = "megadetector",
    detector_version: Annotated[
        str | None,
        typer.Option(help="Version in detector crop names (default: the MD file's info.detector)."),
    ] = None,
    load_truncated: Annotated[
        bool,
        typer.Option(
            help="Crop what is there in truncated images instead of recording them as failures."
        ),
    ] = False,
    save_full_images: Annotated[
        bool,
        typer.Option(
            help="Also save each full image as decoded (oriented RGB JPEG) under OUT_DIR/full_images/."
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes (default: CPU count).")
    ] = 0,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Remake crops that already exist (needed to change settings in a used folder)."
        ),
    ] = False,
) -> None:
    """Crop ground-truth and/or detector boxes; rerun the same command to resume.

    Crops are named [bold]<image>___cropNN[_<detector>].jpg[/] (NN = the box's index in the
    image's list) and listed in OUT_DIR/crops.csv; images or boxes that could not be cropped
    are listed with a reason in OUT_DIR/crop_failures.csv.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ct_crop.boxes import BoxChoice, build_jobs
    from ct_crop.crop import CropSettings, RunOptions, run_crop
    from ct_crop.geometry import Strategy
    from ct_crop.images import ExifMode
    from ct_io.errors import CamtrapError

    if cct is None and detections is None:
        raise CamtrapError(
            "nothing to crop: give --cct (ground-truth boxes) and/or --detections (MegaDetector JSON)"
        )
    settings = CropSettings(
        strategy=Strategy(_choice(strategy, STRATEGIES, "--strategy")),
        margin=margin,
        min_size=min_size,
        size=size,
        upscale=upscale,
        fill=_fill(fill),
        quality=quality,
        exif=ExifMode(_choice(exif, EXIF_MODES, "--exif")),
    )
    options = RunOptions(
        workers=workers or os.cpu_count() or 1,
        allow_truncated=load_truncated,
        save_full_images=save_full_images,
        overwrite=overwrite,
    )
    md = None
    if detections is not None:
        from ct_io.md import read_md

        md = read_md(detections)
    ds = None
    if cct is not None:
        from ct_io.cct import read_cct

        ds = read_cct(cct)
    jobs, skipped = build_jobs(
        cct=ds,
        md=md,
        threshold=threshold,
        categories=tuple(category or ("animal",)),
        detector_version=detector_version,
        choice=BoxChoice(_choice(boxes, BOX_CHOICES, "--boxes")),
    )
    with Progress(
        TextColumn("cropping"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images · {task.fields[crops]} crops"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("crop", total=len(jobs), crops=0)
        made = 0

        def advance(result: object) -> None:
            nonlocal made
            made += len(getattr(result, "rows", ()))
            progress.update(task, advance=1, crops=made)

        summary = run_crop(
            jobs, images_dir, out_dir, settings, options, skipped=skipped, on_image=advance
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
def detect(
    images_dir: Annotated[Path, typer.Argument(help="Folder the image paths are relative to.")],
    out: Annotated[
        Path, typer.Argument(help="MD JSON to write (detections for the chosen images).")
    ],
    detector: Annotated[
        str, typer.Option("--detector", help="Detector plugin name (`ct-io plugins` lists them).")
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
) -> None:
    """Run a detector on images lacking ground-truth boxes, caching results per detector version.

    Without --cct or --files, every image and video clip under IMAGES_DIR is detected. A clip
    is detected on its sampled frames and written as MegaDetector's per-video entry (the form
    Timelapse imports). A rerun reads the cache and only detects images it has never seen;
    OUT is then fed to `ct-crop crop --detections`.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ct_crop.detect import detect_cached, images_without_boxes
    from ct_crop.detectors import get_detector
    from ct_crop.images import is_image_name
    from ct_crop.video_detect import sampling_from_options
    from ct_io.errors import CamtrapError
    from ct_io.md import write_md
    from ct_io.options import parse_key_values
    from ct_io.video import is_video_file

    if not images_dir.is_dir():
        raise CamtrapError(f"images folder {images_dir} does not exist")
    sampling = sampling_from_options(every_n_frames, frames_per_second)
    if cct is not None:
        from ct_io.cct import read_cct

        wanted = images_without_boxes(read_cct(cct))
    elif files is not None:
        if not files.is_file():
            raise CamtrapError(f"{files}: file not found")
        wanted = [
            line.strip() for line in files.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    else:
        wanted = sorted(
            p.relative_to(images_dir).as_posix()
            for p in images_dir.rglob("*")
            if p.is_file() and (is_image_name(p.name) or is_video_file(p.name))
        )
    det = get_detector(detector, parse_key_values(option or []))
    with Progress(
        TextColumn(f"detecting ({det.version})"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("detect", total=None)
        results, new = detect_cached(
            det,
            images_dir,
            wanted,
            cache_dir,
            dataset=dataset or images_dir.resolve().name,
            retry_failures=retry_failures,
            on_image=lambda _: progress.advance(task),
            sampling=sampling,
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
    images_dir: Annotated[
        Path, typer.Option("--images-dir", "-i", help="Folder the image paths are relative to.")
    ],
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
