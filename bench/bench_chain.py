"""The field chain, end to end: ``ct-infer run`` against MegaDetector's three scripts.

Photos + MegaDetector JSON + a classifier → a Timelapse-ready MD JSON with species. Both
sides, whole processes, same photos, same network, interleaved round by round:

- ours: ``ct-infer run IMAGES BUNDLE -d MD.json -o OUT.json`` (crops in memory, classify,
  merge), with the same detection threshold and the same per-class output threshold;
- MegaDetector's chain as the seed documents it (``megadetector`` 10.0.28 from its own venv,
  ``bench/megadetector_env.py``), the three times summed:
  ``crop_detections.py MD.json CROPS --images-dir IMAGES --threshold 0.8 --save-full-images
  --square-crops --threads 50 --logdir .`` →
  ``run_classifier.py MODEL.pt CROPS out.csv.gz --detections-json MD.json
  --classifier-categories index_to_name.json --image-size 224 --batch-size 64
  --num-workers 8`` (the TorchScript export of the same bundle) →
  ``merge_classification_detection_output.py out.csv.gz index_to_name.json --output-json
  OUT.json --classifier-name NAME --threshold 0.05 --detection-json MD.json``.

The photos are ../shared/data/md-test-images repeated (hard links in sub-folders) to at least
``--photos``. The script checks both outputs classified the same detections and reports
the top-1 agreement (the bundle preprocesses as run_classifier.py does: short side bicubic
+ centre crop; crops are the tightest square on both sides, MegaDetector pads at the image
edge with black, ct-infer's square crop shifts inside the image).

    python bench/bench_chain.py [--photos 620] [--rounds 1] [--backbone resnet18]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_classify import Run, export_for_megadetector, make_bundle, timed
from benchpage import Figure, Section, console_script, md_test_images, save
from megadetector_env import compile_bytecode, md_python

ROOT = Path(__file__).resolve().parents[1]
DATA = md_test_images()
#: the seed's flags (classification README, "Run a trained classifier on new images")
SEED_THRESHOLD, SEED_MERGE_THRESHOLD = 0.8, 0.05


def _link(source: Path, target: Path) -> None:
    """A hard link (a copy across file systems): ct-infer refuses symlinks that lead
    outside the images folder, as it must for paths taken from data files."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def make_photos(folder: Path, photos: int) -> tuple[Path, Path, int]:
    """(images folder, MD JSON, photo count): the real photos repeated in sub-folders."""
    md = json.loads((DATA / "md_output_v5a.json").read_text())
    repeat = math.ceil(photos / len(md["images"]))
    entries = []
    for r in range(repeat):
        sub = folder / "images" / f"rep{r:02d}"
        sub.mkdir(parents=True)
        for im in md["images"]:
            _link(DATA / "images" / im["file"], sub / im["file"])
            entries.append({**im, "file": f"rep{r:02d}/{im['file']}"})
    md_json = folder / "md.json"
    md_json.write_text(json.dumps({**md, "images": entries}))
    return folder / "images", md_json, len(entries)


def run_megadetector(
    images: Path, md_json: Path, script: Path, names: Path, work: Path, size: int
) -> tuple[Run, dict[str, float], Path]:
    """The three scripts one after the other: (summed run, seconds per script, output)."""
    crops, csv, out = work / "md-crops", work / "md-classified.csv.gz", work / "md-out.json"
    shutil.rmtree(crops, ignore_errors=True)
    csv.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    py = str(md_python())
    mod = "megadetector.classification."
    steps = {
        "crop_detections": [py, "-m", mod + "crop_detections", str(md_json), str(crops),
                            "--images-dir", str(images), "--threshold", str(SEED_THRESHOLD),
                            "--save-full-images", "--square-crops", "--threads", "50",
                            "--logdir", str(work)],
        "run_classifier": [py, "-m", mod + "run_classifier", str(script), str(crops), str(csv),
                           "--detections-json", str(md_json), "--classifier-categories",
                           str(names), "--image-size", str(size), "--batch-size", "64",
                           "--num-workers", "8"],
        "merge_classification_detection_output": [
            py, "-m", mod + "merge_classification_detection_output", str(csv), str(names),
            "--output-json", str(out), "--classifier-name", "bench",
            "--threshold", str(SEED_MERGE_THRESHOLD), "--detection-json", str(md_json)],
    }  # fmt: skip
    parts = {name: timed(cmd)[0] for name, cmd in steps.items()}
    total = Run(
        sum(p.wall for p in parts.values()),
        sum(p.cpu for p in parts.values()),
        parts["crop_detections"].load,
    )
    return total, {k: v.wall for k, v in parts.items()}, out


def run_ours(images: Path, md_json: Path, bundle: Path, work: Path) -> tuple[Run, Path]:
    out = work / "ct-out.json"
    for stale in work.glob("ct-out.json*"):
        stale.unlink()
    cmd = [console_script("ct-infer"), "run", str(images), str(bundle),
           "-o", str(out), "-d", str(md_json), "--detection-threshold", str(SEED_THRESHOLD),
           "--threshold", str(SEED_MERGE_THRESHOLD), "--top-k", "1000",
           "--classifier-name", "bench", "--overwrite"]  # fmt: skip
    return timed(cmd)[0], out


def classified(path: Path) -> dict[tuple[str, int], str]:
    """(file, detection index) → top class name, for every classified detection."""
    data = json.loads(path.read_text())
    names = data.get("classification_categories", {})
    out = {}
    for im in data["images"]:
        for i, det in enumerate(im.get("detections") or []):
            if det.get("classifications"):
                best = max(det["classifications"], key=lambda c: c[1])
                out[(im["file"], i)] = names[best[0]]
    return out


def compare(ours: Path, theirs: Path) -> str:
    a, b = classified(ours), classified(theirs)
    if set(a) != set(b):
        raise SystemExit(
            f"different detections classified: {len(set(a) - set(b))} only ct-infer, "
            f"{len(set(b) - set(a))} only MegaDetector's chain"
        )
    agree = sum(a[k] == b[k] for k in a) / len(a)
    return f"the same {len(a)} detections classified on both sides; top-1 agreement {agree:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=620, help="At least this many photos.")
    parser.add_argument("--rounds", type=int, default=1, help="Interleaved rounds (median).")
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()
    size = 224
    compile_bytecode(md_python())
    compile_bytecode(Path(sys.executable), *(ROOT / "packages").glob("*/src"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images, md_json, n_photos = make_photos(work, args.photos)
        bundle = make_bundle(args.backbone, work / f"{args.backbone}.safetensors")
        script, names = export_for_megadetector(bundle, work)
        ours_runs: list[Run] = []
        md_runs: list[Run] = []
        md_parts: list[dict[str, float]] = []
        for _ in range(args.rounds):
            run, md_out = run_ours(images, md_json, bundle, work)
            ours_runs.append(run)
            print(f"ct-infer run: {run.wall:.1f} s, {run.cpu:.1f} CPU s, load {run.load:.1f}")
            total, parts, theirs = run_megadetector(images, md_json, script, names, work, size)
            md_runs.append(total)
            md_parts.append(parts)
            print(f"MegaDetector chain: {total.wall:.1f} s ({parts}), load {total.load:.1f}")
        same = compare(md_out, theirs)
    ours_wall = statistics.median(r.wall for r in ours_runs)
    md_wall = statistics.median(r.wall for r in md_runs)
    ours_cpu = statistics.median(r.cpu for r in ours_runs)
    md_cpu = statistics.median(r.cpu for r in md_runs)
    part_medians = {k: statistics.median(p[k] for p in md_parts) for k in md_parts[0]}
    loads = [r.load for r in ours_runs + md_runs]
    lines = [
        f"{n_photos} photos (the md-test-images repeated), {args.backbone} @{size}, detection "
        f"threshold {SEED_THRESHOLD} and output threshold {SEED_MERGE_THRESHOLD} (the seed's); "
        f"median of {args.rounds} interleaved round(s); load average at the runs' starts "
        f"{min(loads):.1f}–{max(loads):.1f}.",
        "",
        "| tool | wall s | photos/s | CPU s | ct-infer × this (wall) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| ct-infer run | {ours_wall:.1f} | {n_photos / ours_wall:.1f} | {ours_cpu:.1f} | 1.00× |",
        f"| MegaDetector chain (3 scripts) | {md_wall:.1f} | {n_photos / md_wall:.1f} "
        f"| {md_cpu:.1f} | {md_wall / ours_wall:.2f}× |",
        *[f"| … {k}.py | {v:.1f} | | | |" for k, v in part_medians.items()],
        "",
        f"Same work: {same}.",
    ]
    print("\n".join(lines))
    figures = [
        Figure(f"{n_photos} photos → Timelapse JSON, {args.backbone} @{size}, whole chain",
               n_photos / ours_wall, "photos/s", n_photos / md_wall,
               "MegaDetector crop_detections → run_classifier → merge (seed flags)",
               target=3.0),
        Figure(f"{n_photos} photos, CPU seconds of all processes", ours_cpu, "CPU s", md_cpu,
               "MegaDetector crop_detections → run_classifier → merge (seed flags)",
               higher_is_better=False),
    ]  # fmt: skip
    save(Section("chain", "The field chain (photos + MD JSON → Timelapse JSON)", figures,
                 "\n".join(lines)))  # fmt: skip


if __name__ == "__main__":
    main()
