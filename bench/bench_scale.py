"""Scale dry run of the data half of the pipeline on a generated 1,000,000-image CCT.

CCT -> ``ct-taxonomy select`` -> ``ct-splits dataset`` (crops faked by a crops.csv manifest,
no image files) -> ``ct-splits split``. Each stage runs as its console script in a child
process; its wall time and peak RSS (``os.wait4``) are recorded. Target: < 4 GiB peak and
< 3 minutes in total on the 2-core machine.

    uv run python bench/bench_scale.py [--images 1000000] [--work DIR] [--trials 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from ct_crop.manifest import MANIFEST_COLUMNS

BIN = Path(sys.executable).parent
SPECIES = [f"species_{i:02d}" for i in range(30)]


def generate(work: Path, n: int, seed: int = 0) -> None:
    """A CCT of ``n`` images (one box each, 30 species, 3,000 locations) and its crops.csv."""
    rng = np.random.default_rng(seed)
    cat = rng.zipf(1.6, n) % len(SPECIES)
    loc = rng.integers(0, 3000, n)
    names = [f"loc{loc[i]:04d}/img{i:07d}.jpg" for i in range(n)]
    images = [
        {
            "id": f"i{i}",
            "file_name": names[i],
            "width": 1920,
            "height": 1080,
            "location": f"loc{loc[i]:04d}",
            "seq_id": f"s{i // 3}",
        }
        for i in range(n)
    ]
    anns = [
        {
            "id": f"a{i}",
            "image_id": f"i{i}",
            "category_id": int(cat[i]),
            "bbox": [100, 100, 400, 300],
        }
        for i in range(n)
    ]
    cats = [{"id": i, "name": s} for i, s in enumerate(SPECIES)]
    (work / "big.json").write_bytes(
        msgspec.json.encode(
            {"info": {"version": "1"}, "images": images, "annotations": anns, "categories": cats}
        )
    )
    del images, anns
    spec = {s: {"dataset_labels": {"big": [s]}} for s in SPECIES}
    (work / "spec.json").write_text(json.dumps(spec))
    crops = work / "crops"
    crops.mkdir(exist_ok=True)
    frame = pd.DataFrame(
        {
            "crop": [f"{x}___crop00.jpg" for x in names],
            "image": names,
            "box_index": 0,
            "source": "gt",
            "detector": "",
            "category": [SPECIES[c] for c in cat],
            "confidence": "",
            "box_x": 100,
            "box_y": 100,
            "box_w": 400,
            "box_h": 300,
            "crop_x": 100,
            "crop_y": 50,
            "crop_w": 400,
            "crop_h": 400,
            "width": 400,
            "height": 400,
            "image_width": 1920,
            "image_height": 1080,
        }
    )
    frame[list(MANIFEST_COLUMNS)].to_csv(crops / "crops.csv", index=False)


def stage(name: str, argv: list[str], cwd: Path) -> dict[str, float]:
    """Run one console script; wall seconds and peak RSS (GiB) of the child."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]], cwd=cwd, env={**os.environ, "COLUMNS": "160"}
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{name} failed with exit {code}")
    rss = usage.ru_maxrss / 2**20  # KiB on Linux
    print(f"  {name:<10} {wall:7.1f} s  peak RSS {rss:5.2f} GiB", flush=True)
    return {"wall_s": wall, "peak_rss_gib": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ct-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    generate(work, args.images)
    print(f"generated {args.images:,} images in {time.perf_counter() - t:.1f} s under {work}")
    results = {
        "select": stage(
            "select",
            ["ct-taxonomy", "select", "spec.json", "-o", "sel", "-d", "big=big.json"],
            work,
        ),
        "dataset": stage(
            "dataset",
            [
                "ct-splits",
                "dataset",
                "ds",
                "-c",
                "crops",
                "-q",
                "sel/queried_images.json",
                "--no-check-files",
            ],
            work,
        ),
        "split": stage("split", ["ct-splits", "split", "ds", "--trials", str(args.trials)], work),
    }
    total = sum(r["wall_s"] for r in results.values())
    peak = max(r["peak_rss_gib"] for r in results.values())
    ok = total < 180 and peak < 4
    print(
        f"total {total:.1f} s, peak RSS {peak:.2f} GiB — {'within' if ok else 'OVER'} target (< 180 s, < 4 GiB)"
    )
    save_section(args.images, results, total, peak)
    (work / "bench_scale.json").write_text(
        json.dumps(
            {"images": args.images, "stages": results, "total_s": total, "peak_rss_gib": peak},
            indent=1,
        )
    )


def save_section(
    images: int, stages: dict[str, dict[str, float]], total: float, peak: float
) -> None:
    """Headline figures for docs/benchmarks.md: the issue's bounds (no reference tool)."""
    from benchpage import Figure, Section, save

    rows = [
        f"| {name} | {r['wall_s']:.1f} | {r['peak_rss_gib']:.2f} |" for name, r in stages.items()
    ]
    save(
        Section(
            "scale",
            f"Data half of the pipeline at scale ({images:,}-image CCT)",
            [
                Figure(
                    "select → dataset → split, wall time",
                    total,
                    "s",
                    higher_is_better=False,
                    bound=180,
                ),
                Figure("peak RSS of any stage", peak, "GiB", higher_is_better=False, bound=4),
            ],
            "Each stage is its command-line tool in its own process (crops faked by the "
            "manifest, `--no-check-files`).\n\n| stage | wall s | peak RSS (GiB) |\n"
            "|---|---:|---:|\n" + "\n".join(rows),
        )
    )


if __name__ == "__main__":
    main()
