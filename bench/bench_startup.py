"""Start-up of the light commands: ``--help``, and a one-item real job, whole process.

Every ``ct-*`` command pays its imports before any work; a small job (31 photos) is
dominated by them. For ct-crop, ct-splits, ct-taxonomy and ct-io this measures, as
separate processes (the installed console scripts, timed with ``time.perf_counter``
around ``subprocess.run``, median of ``--repeats``):

- ``--help`` (target ≤ 0.5 s);
- a real job on one item, from start to exit (an upper bound of the time to the first
  work item; target ≤ 1.5 s): ``ct-crop crop`` one photo with its MegaDetector boxes,
  ``ct-splits split`` an 11-crop dataset, ``ct-taxonomy taxa`` one name, ``ct-io info``
  the MegaDetector JSON;
- ``python -c pass``, the interpreter's own floor, beside them.

The load average is recorded with every figure: on a shared machine it inflates all of
them alike, so compare figures from the same run.

    python bench/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchpage import Figure, Section, md_test_images, save

BIN = Path(sys.executable).parent
HELP_BOUND, FIRST_ITEM_BOUND = 0.5, 1.5


def timed(argv: Sequence[str], repeats: int) -> float:
    """Median wall seconds of ``argv`` run to completion (it must succeed)."""
    times = []
    env = {**os.environ, "COLUMNS": "100"}
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stdout}\n{done.stderr}")
    return statistics.median(times)


def command(name: str) -> str:
    """The console script installed beside this interpreter."""
    path = BIN / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run from an environment with every package")
    return str(path)


def jobs(tmp: Path, photos: Path) -> dict[str, list[str]]:
    """One small real job per command, its inputs made under ``tmp``."""
    md = json.loads((photos / "md_output_v5a.json").read_text())
    first = next(im for im in md["images"] if im.get("detections"))
    one = tmp / "one"
    (one / Path(first["file"]).parent).mkdir(parents=True, exist_ok=True)
    shutil.copy(photos / "images" / first["file"], one / first["file"])
    one_md = tmp / "one.json"
    one_md.write_text(json.dumps({**md, "images": [first]}))

    crops = sorted(p.name for p in (photos / "images").iterdir() if p.suffix.lower() == ".jpg")
    labels = ["deer", "fox", "owl"]
    queried = {
        f"park/{n}": {"dataset": "park", "location": i % 9, "class": labels[i % 3],
                      "label": [labels[i % 3]]}
        for i, n in enumerate(crops)
    }  # fmt: skip
    (tmp / "queried.json").write_text(json.dumps(queried))
    manifest = ["crop,image,box_index,source,detector,category,confidence"]
    manifest += [f"{n},park/{n},0,detector,mdv5a,animal,0.9" for n in crops]
    (tmp / "crops.csv").write_text("\n".join(manifest) + "\n")
    subprocess.run(
        [command("ct-splits"), "dataset", str(tmp / "ds"), "-q", str(tmp / "queried.json"),
         "-c", str(photos / "images"), "--manifest", str(tmp / "crops.csv"), "--min-locs", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    taxonomy = Path(__file__).resolve().parents[1] / "packages/ct-taxonomy/tests/data/taxonomy.csv"
    return {
        "ct-crop": [command("ct-crop"), "crop", str(tmp / "crops-out"), "-i", str(one),
                    "-d", str(one_md), "--overwrite"],
        "ct-splits": [command("ct-splits"), "split", str(tmp / "ds")],
        "ct-taxonomy": [command("ct-taxonomy"), "taxa", str(taxonomy), "coyote"],
        "ct-io": [command("ct-io"), "info", str(one_md)],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Runs per figure (median).")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, float]] = []
    floor = timed([sys.executable, "-c", "pass"], args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        for name, job in jobs(Path(tmp), md_test_images()).items():
            helped = timed([command(name), "--help"], args.repeats)
            load = os.getloadavg()[0]
            first = timed(job, args.repeats)
            rows.append((name, helped, first, load))
            print(f"{name}: --help {helped:.2f} s, one-item job {first:.2f} s (load {load:.1f})")
    lines = [
        f"Median of {args.repeats} runs of each installed console script, whole process; "
        f"`python -c pass` takes {floor:.2f} s here. The one-item job (ct-crop: one photo; "
        "ct-splits: split 11 crops; ct-taxonomy: look one name up; ct-io: info on an MD "
        "JSON) bounds the time to the first work item from above.",
        "",
        "| command | `--help` (s) | one-item job (s) | load average |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {n} | {h:.2f} | {f:.2f} | {lo:.1f} |" for n, h, f, lo in rows],
    ]
    print("\n".join(lines))
    figures = []
    for n, h, f, _lo in rows:
        figures += [
            Figure(f"{n} --help", round(h, 3), "s", higher_is_better=False, bound=HELP_BOUND),
            Figure(f"{n} one-item job (first work item)", round(f, 3), "s",
                   higher_is_better=False, bound=FIRST_ITEM_BOUND),
        ]  # fmt: skip
    save(Section("startup", "Start-up of the light commands", figures, "\n".join(lines)))


if __name__ == "__main__":
    main()
