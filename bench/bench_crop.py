"""Benchmark: ct-crop against MegaDetector's own ``crop_detections``, whole process.

Run from the repository root:  ``uv run python bench/bench_crop.py [--rounds 3] [--repeat 20]``

Inputs: ``../shared/data/md-test-images`` (31 real photos, real MDv5a output, threshold
0.2) and a larger set made by repeating them ``--repeat`` times in sub-folders (symlinks).
For each set, in the same run and interleaved round by round, it times (whole process,
start to exit):

  (a) ``ct-crop crop --strategy tight`` (full-resolution crops)
  (b) ``ct-crop crop --strategy tight --size 448``
  (c) ``python -m megadetector.classification.crop_detections`` (``--threads`` = CPU count)

MegaDetector runs from its own venv (``bench/megadetector_env.py``: ``megadetector``
10.0.28 with ``--no-deps`` plus what its classification scripts import; its unused Azure
import is stubbed). Both tools get tight boxes, so their crops must match: the script checks
that both made the same crop files (the names encode image and box) with the same
sizes give or take MegaDetector's truncation of pixel coordinates, and the same content.
Results go to stdout and ``bench/out/crop.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from benchpage import Figure, Section, console_script, md_test_images, save
from megadetector_env import compile_bytecode, md_env, md_python
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = md_test_images()
WORK = ROOT / "bench" / "out" / "crop"
THRESHOLD = 0.2
#: crop_detections saves with Pillow's default quality; ct-crop is told the same, so both
#: tools write the same output (ct-crop's own default is 95)
MD_JPEG_QUALITY = 75
FULL, SMALL, MD = (
    "(a) ct-crop full res",
    "(b) ct-crop --size 448",
    "(c) MegaDetector crop_detections",
)


def make_sets(repeat: int) -> dict[str, tuple[Path, Path]]:
    """name → (images folder, MD JSON)."""
    big = WORK / f"repeat{repeat}"
    md = json.loads((DATA / "md_output_v5a.json").read_text())
    if repeat > 0 and not (big / "md.json").exists():
        shutil.rmtree(big, ignore_errors=True)
        entries = []
        for r in range(repeat):
            folder = big / "images" / f"rep{r:02d}"
            folder.mkdir(parents=True)
            for im in md["images"]:
                (folder / im["file"]).symlink_to(DATA / "images" / im["file"])
                entries.append({**im, "file": f"rep{r:02d}/{im['file']}"})
        (big / "md.json").write_text(json.dumps({**md, "images": entries}))
    sets = {
        f"md-test-images ({len(md['images'])} images)": (
            DATA / "images",
            DATA / "md_output_v5a.json",
        )
    }
    if repeat > 0:
        sets[f"repeated x{repeat} ({len(md['images']) * repeat} images)"] = (
            big / "images",
            big / "md.json",
        )
    return sets


def commands(images: Path, md_json: Path, outs: dict[str, Path]) -> dict[str, list[str]]:
    def ct(out: Path) -> list[str]:
        return [
            console_script("ct-crop"),
            "crop",
            str(out),
            "-i",
            str(images),
            "-d",
            str(md_json),
            "-t",
            str(THRESHOLD),
            "--strategy",
            "tight",
            "--quality",
            str(MD_JPEG_QUALITY),
        ]

    out = outs[MD]
    md = [
        str(md_python()),
        "-m",
        "megadetector.classification.crop_detections",
        str(md_json),
        str(out),
        "--images-dir",
        str(images),
        "--threshold",
        str(THRESHOLD),
        "--threads",
        str(os.cpu_count() or 1),
        "--logdir",
        str(out.parent / (out.name + "-log")),
    ]
    return {FULL: ct(outs[FULL]), SMALL: [*ct(outs[SMALL]), "--size", "448"], MD: md}


def timed(cmd: list[str], out: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, all processes) of one whole run."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.parent / (out.name + "-log"), ignore_errors=True)
    env = md_env()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def crops_in(folder: Path) -> dict[str, Path]:
    return {
        p.relative_to(folder).as_posix(): p
        for p in folder.rglob("*.jpg")
        if "full_images" not in p.parts
    }


def check_equivalent(ours: Path, theirs: Path) -> str:
    """Same crop files, sizes within MegaDetector's truncation, similar pixels."""
    a, b = crops_in(ours), crops_in(theirs)
    if set(a) != set(b):
        raise SystemExit(
            f"crop sets differ: {len(set(a) - set(b))} only ct-crop, {len(set(b) - set(a))} only MegaDetector"
        )
    worst_size, errors = 0, []
    for name in sorted(a):
        x = np.asarray(Image.open(a[name]).convert("RGB"), dtype=np.int16)
        y = np.asarray(Image.open(b[name]).convert("RGB"), dtype=np.int16)
        worst_size = max(worst_size, abs(x.shape[0] - y.shape[0]), abs(x.shape[1] - y.shape[1]))
        h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
        errors.append(float(np.abs(x[:h, :w] - y[:h, :w]).mean()))
    if worst_size > 2:
        raise SystemExit(f"crop sizes differ by {worst_size} px: not the same boxes")
    return f"{len(a)} identical crop names; sizes within {worst_size} px; mean abs pixel difference {statistics.mean(errors):.2f}/255 (both JPEG quality {MD_JPEG_QUALITY})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed runs per tool and set (median reported)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=20,
        help="copies of the 31 images in the larger set (0: only the 31 images)",
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    compile_bytecode(md_python())
    compile_bytecode(Path(sys.executable), *(ROOT / "packages").glob("*/src"))
    lines = [
        f"# ct-crop vs MegaDetector crop_detections ({os.cpu_count()} CPUs, median of {args.rounds} runs, whole process)",
        "",
        f"Load average at start: {os.getloadavg()[0]:.1f}. Other work on the machine slows every tool; "
        "CPU seconds (user + system of all the tool's processes) depend less on it than wall time.",
        "",
    ]
    figures: list[Figure] = []
    for set_name, (images, md_json) in make_sets(args.repeat).items():
        md = json.loads(md_json.read_text())
        n_images = len(md["images"])
        outs = {name: WORK / "run" / name[1] for name in (FULL, SMALL, MD)}
        cmds = commands(images, md_json, outs)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpu: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.rounds):
            for name, cmd in cmds.items():
                wall, used = timed(cmd, outs[name])
                times[name].append(wall)
                cpu[name].append(used)
        n_crops = len(crops_in(outs[MD]))
        equivalence = check_equivalent(outs[FULL], outs[MD])
        if set(crops_in(outs[SMALL])) != set(crops_in(outs[FULL])):
            raise SystemExit("448 px run made other crops than the full-resolution run")
        base, base_cpu = statistics.median(times[MD]), statistics.median(cpu[MD])
        lines += [
            f"## {set_name}, {n_crops} crops at threshold {THRESHOLD}",
            "",
            "| tool | wall s | crops/s | images/s | vs MegaDetector (wall) | CPU s | vs MegaDetector (CPU) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, ts in times.items():
            t, c = statistics.median(ts), statistics.median(cpu[name])
            lines.append(
                f"| {name} | {t:.2f} | {n_crops / t:.1f} | {n_images / t:.1f} | {base / t:.2f}x "
                f"| {c:.2f} | {base_cpu / c:.2f}x |"
            )
        full_target = 1.0 if n_images < 100 else 1.5  # start-up dominates the small set
        for name, target in ((FULL, full_target), (SMALL, 3.0)):
            figures.append(
                Figure(
                    f"{set_name}: {name[4:]}, crops/s",
                    n_crops / statistics.median(times[name]),
                    "crops/s",
                    n_crops / base,
                    "MegaDetector crop_detections",
                    target=target,
                )
            )
        lines += ["", f"Equivalence: {equivalence}.", ""]
        print("\n".join(lines[-(len(times) + 5) :]), flush=True)
    (WORK.parent / "crop.md").write_text("\n".join(lines))
    save(Section("crop", "Cropping detections", figures, "\n".join(lines[1:])))
    print(f"\nwritten to {WORK.parent / 'crop.md'}")


if __name__ == "__main__":
    main()
