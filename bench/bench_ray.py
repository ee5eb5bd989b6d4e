"""Benchmark: ``ct-crop crop`` on the local engine against ``--engine ray`` (1 and 2 workers).

Run from the repository root:  ``uv run python bench/bench_ray.py [--repeat 36]``

Input: the md-test-images (``benchpage.md_test_images()``) repeated ``--repeat`` times in
sub-folders (symlinks): by default 36 × 31 = 1,116 photos, of which 612 have a detection
above the 0.2 threshold and are cropped (photos/s counts those). Each configuration runs in its own process
(a fresh Ray cluster each time, so nothing is warm), into an empty folder, with the
crops at ``--size 224``:

  local      this machine's worker processes (``--workers 2``)
  ray x1     ``--engine ray``, a local cluster of 1 CPU
  ray x2     ``--engine ray``, a local cluster of 2 CPUs

It reports photos/s and crops/s of the job, the Ray cluster's start-up apart, and the
whole process. Every configuration must write the same crops (checked byte for byte
against the local engine's). Results go to stdout and ``bench/out/results/ray.json``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchpage import Figure, Section, md_test_images, save

ROOT = Path(__file__).resolve().parents[1]
DATA = md_test_images()
WORK = ROOT / "bench" / "out" / "ray"

#: One configuration, timed inside its own process: cluster start, then the job.
JOB = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
engine, workers, images, md_json, out = sys.argv[1:6]
workers = int(workers)
from ct_crop.boxes import BoxSelection
from ct_crop.crop import crop_boxes
from ct_crop.settings import CropSettings, RunOptions
from ct_io.engines import EngineChoice
from ct_io.md import read_md
md = read_md(md_json)
ready = time.perf_counter()
if engine == "ray":
    import ray
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 1024**2)
ready = time.perf_counter()
summary = crop_boxes(Path(images), Path(out), md=md, boxes=BoxSelection(threshold=0.2),
                     settings=CropSettings(size=224), options=RunOptions(workers=workers),
                     engine=EngineChoice(engine))
done = time.perf_counter()
print(json.dumps({"start": ready - start, "job": done - ready, "images": summary.images,
                  "crops": summary.crops, "failed": summary.images_failed}))
"""

CONFIGS = {"local": ("local", 2), "ray x1": ("ray", 1), "ray x2": ("ray", 2)}


def make_set(repeat: int) -> tuple[Path, Path]:
    """The photos repeated ``repeat`` times (symlinks) and their MD JSON."""
    big = WORK / f"repeat{repeat}"
    md = json.loads((DATA / "md_output_v5a.json").read_text())
    if not (big / "md.json").exists():
        shutil.rmtree(big, ignore_errors=True)
        entries = []
        for r in range(repeat):
            folder = big / "images" / f"rep{r:02d}"
            folder.mkdir(parents=True)
            for im in md["images"]:
                (folder / im["file"]).symlink_to(DATA / "images" / im["file"])
                entries.append({**im, "file": f"rep{r:02d}/{im['file']}"})
        (big / "md.json").write_text(json.dumps({**md, "images": entries}))
    return big / "images", big / "md.json"


def run(name: str, images: Path, md_json: Path) -> dict[str, float]:
    engine, workers = CONFIGS[name]
    out = WORK / "crops" / name.replace(" ", "")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", JOB, engine, str(workers), str(images), str(md_json), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def same_crops(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    other = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return names == other and not mismatch and not errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=36, help="copies of the photos (36: 612 with boxes)"
    )
    args = parser.parse_args()
    images, md_json = make_set(args.repeat)
    results = {name: run(name, images, md_json) for name in CONFIGS}
    local = WORK / "crops" / "local"
    rows = [
        "| engine | photos | crops | cluster start s | job s | photos/s (job) | crops/s (job) "
        "| whole process s | same crops as local |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        same = name == "local" or same_crops(local, WORK / "crops" / name.replace(" ", ""))
        rows.append(
            f"| {name} | {r['images']} | {r['crops']} | {r['start']:.1f} | {r['job']:.1f} | "
            f"{r['images'] / r['job']:.1f} | {r['crops'] / r['job']:.1f} | {r['wall']:.1f} | "
            f"{'yes' if same else 'NO'} |"
        )
    table = "\n".join(rows)
    print(table)
    base = results["local"]
    figures = [
        Figure(
            f"crop --size 224, {name}, photos/s (job)",
            round(r["images"] / r["job"], 2),
            "photos/s",
            reference=round(base["images"] / base["job"], 2),
            reference_name="local engine, 2 processes",
        )
        for name, r in results.items()
        if name != "local"
    ]
    note = (
        "Ray's overhead on one machine: the cluster start (seconds, once per command), a "
        "task per shard of 64 photos, and the shard files merged by the driver. It buys "
        "many machines, not speed on one."
    )
    save(Section("ray", "Ray engine vs local (crop)", figures, f"{table}\n\n{note}\n"))


if __name__ == "__main__":
    main()
