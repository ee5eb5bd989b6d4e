"""Benchmark: load a 1,000,000-image / 1,200,000-annotation COCO Camera Traps file.

    uv run python bench/bench_cct_load.py            # generate once (cached), then measure
    uv run python bench/bench_cct_load.py --repeat 3 # best of 3 per measurement

Each measurement runs in a fresh interpreter (a separate subprocess), so peak RSS is that
of one job alone: plain ``json.load`` of the file, ``ct_io.cct.read_cct``, ``validate_cct``
on the loaded tables, and ``write_cct``. Results print as a table and are written to
``bench/out/cct_load.json``. Targets (issue 2): ``read_cct`` peak memory <= 0.5x and time
<= 1x of ``json.load``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"
N_IMAGES = 1_000_000
N_ANNOTATIONS = 1_200_000
N_CATEGORIES = 60
N_LOCATIONS = 2_000
_CHUNK = 50_000

# Code each child runs: load/measure one thing, print one JSON line with its figures.
CHILD = {
    "json.load": """
import json
with open(PATH, "rb") as fh:
    t0 = time.perf_counter(); data = json.load(fh); dt = time.perf_counter() - t0
n = len(data["images"])
""",
    "read_cct": """
from ct_io.cct import read_cct
t0 = time.perf_counter(); ds = read_cct(PATH); dt = time.perf_counter() - t0
n = len(ds.images)
""",
    "validate_cct": """
from ct_io.cct import read_cct, validate_cct
ds = read_cct(PATH)
t0 = time.perf_counter(); problems = validate_cct(ds); dt = time.perf_counter() - t0
n = len(ds.images)
assert not [p for p in problems if p.is_error], problems[:3]
""",
    "write_cct": """
from ct_io.cct import read_cct, write_cct
ds = read_cct(PATH)
t0 = time.perf_counter(); write_cct(ds, PATH + ".rewritten"); dt = time.perf_counter() - t0
n = len(ds.images)
os.unlink(PATH + ".rewritten")
""",
}

PRELUDE = "import os, resource, sys, time, json as _j\nPATH = sys.argv[1]\n"
EPILOGUE = 'print(_j.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "images": n}))\n'


def generate(path: Path) -> None:
    """Write a LILA-like CCT file (string ids, sequences, ~half the annotations boxed)."""
    import msgspec
    import numpy as np

    from ct_io.atomic import atomic_open

    rng = np.random.default_rng(0)
    enc = msgspec.json.Encoder()
    with atomic_open(path, "wb") as fh:
        fh.write(b'{"info":{"version":"1.0","description":"camtrap benchmark CCT"},"images":[')
        for start in range(0, N_IMAGES, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, N_IMAGES))
            locs = rng.integers(0, N_LOCATIONS, len(idx))
            recs = [
                {
                    "id": f"S{i % 11}/R{i // 3:07d}/IMG_{i:07d}",
                    "file_name": f"S{i % 11}/L{loc:04d}/R{i // 3:07d}/IMG_{i:07d}.JPG",
                    "width": 2048,
                    "height": 1536,
                    "location": f"L{loc:04d}",
                    "datetime": f"2019-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{i % 59:02d}",
                    "seq_id": f"seq_{i // 3:07d}",
                    "seq_num_frames": 3,
                    "frame_num": int(i % 3),
                }
                for i, loc in zip(idx.tolist(), locs.tolist(), strict=True)
            ]
            fh.write((b"," if start else b"") + enc.encode(recs)[1:-1])
        fh.write(b'],"categories":')
        fh.write(
            enc.encode(
                [
                    {"id": c, "name": "empty" if c == 0 else f"species_{c}"}
                    for c in range(N_CATEGORIES)
                ]
            )
        )
        fh.write(b',"annotations":[')
        for start in range(0, N_ANNOTATIONS, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, N_ANNOTATIONS))
            image = rng.integers(0, N_IMAGES, len(idx))
            cats = rng.integers(0, N_CATEGORIES, len(idx))
            xy = rng.uniform(0, 1000, (len(idx), 2)).round(1)
            wh = rng.uniform(10, 900, (len(idx), 2)).round(1)
            boxed = rng.random(len(idx)) < 0.5
            recs = []
            for k, i in enumerate(idx.tolist()):
                im = int(image[k])
                rec: dict[str, Any] = {
                    "id": f"ann_{i:08x}",
                    "image_id": f"S{im % 11}/R{im // 3:07d}/IMG_{im:07d}",
                    "category_id": int(cats[k]),
                }
                if boxed[k]:
                    rec["bbox"] = [*xy[k].tolist(), *wh[k].tolist()]
                recs.append(rec)
            fh.write((b"," if start else b"") + enc.encode(recs)[1:-1])
        fh.write(b"]}\n")


def measure(name: str, path: Path, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` time and the peak RSS of that run, each in a fresh interpreter."""
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        code = PRELUDE + CHILD[name] + EPILOGUE
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement (best time kept)"
    )
    parser.add_argument("--regenerate", action="store_true", help="rebuild the cached CCT file")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    path = OUT / "cct_1m.json"
    if args.regenerate or not path.is_file():
        console.print(f"generating {path} ({N_IMAGES:,} images, {N_ANNOTATIONS:,} annotations)…")
        t0 = time.perf_counter()
        generate(path)
        console.print(f"  done in {time.perf_counter() - t0:.1f} s")
    size_mb = path.stat().st_size / 2**20
    with path.open("rb") as fh:  # warm the page cache so no run pays for the disk
        while fh.read(1 << 24):
            pass

    results = {}
    for name in CHILD:
        console.print(f"measuring {name}…")
        results[name] = measure(name, path, args.repeat)

    base = results["json.load"]
    table = Table(
        title=f"CCT load: {N_IMAGES:,} images, {N_ANNOTATIONS:,} annotations, {size_mb:,.0f} MB file"
    )
    for col in ("job", "time (s)", "× json.load", "peak RSS (MB)", "× json.load"):
        table.add_column(col, justify="right" if col != "job" else "left")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['seconds']:.2f}",
            f"{r['seconds'] / base['seconds']:.2f}",
            f"{r['peak_rss_mb']:,.0f}",
            f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}",
        )
    console.print(table)
    read = results["read_cct"]
    time_ok = read["seconds"] <= base["seconds"]
    mem_ok = read["peak_rss_mb"] <= 0.5 * base["peak_rss_mb"]
    console.print(
        f"read_cct targets: time ≤ 1× json.load {'[green]met[/]' if time_ok else '[red]missed[/]'}, "
        f"peak RSS ≤ 0.5× {'[green]met[/]' if mem_ok else '[red]missed[/]'}"
    )
    report = {
        "file_mb": round(size_mb, 1),
        "images": N_IMAGES,
        "annotations": N_ANNOTATIONS,
        "repeat": args.repeat,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": results,
        "targets_met": {"time": time_ok, "memory": mem_ok},
    }
    from ct_io.jsonio import write_json

    write_json(OUT / "cct_load.json", report)
    console.print(f"wrote {OUT / 'cct_load.json'}")
    save_section(results, size_mb)


def save_section(results: dict[str, dict[str, float]], size_mb: float) -> None:
    """Headline figures for docs/benchmarks.md: read_cct beside json.load."""
    from benchpage import Figure, Section, save

    base, read = results["json.load"], results["read_cct"]
    rows = [
        f"| {name} | {r['seconds']:.2f} | {r['peak_rss_mb']:,.0f} |" for name, r in results.items()
    ]
    save(
        Section(
            "cct_load",
            "COCO Camera Traps load (1M images)",
            [
                Figure(
                    "read_cct time",
                    read["seconds"],
                    "s",
                    base["seconds"],
                    "json.load",
                    higher_is_better=False,
                    target=1.0,
                ),
                Figure(
                    "read_cct peak RSS",
                    read["peak_rss_mb"],
                    "MB",
                    base["peak_rss_mb"],
                    "json.load",
                    higher_is_better=False,
                    target=2.0,
                ),
            ],
            f"{N_IMAGES:,} images, {N_ANNOTATIONS:,} annotations, a {size_mb:,.0f} MB file "
            "(page cache warm); each job in a fresh interpreter, best time kept.\n\n"
            "| job | seconds | peak RSS (MB) |\n|---|---:|---:|\n" + "\n".join(rows),
        )
    )


if __name__ == "__main__":
    main()
