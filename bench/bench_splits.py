"""Benchmark: ct-splits vs MegaDetector's ``create_splits_random`` on the same tables.

    python bench/bench_splits.py [--sizes small,large] [--seeds 3]

Builds ``bench/.venvs/megadetector`` once (``uv pip install --no-deps megadetector`` plus
what ``create_classification_dataset`` imports; the modules it imports that the wheel
does not ship are stubbed), writes the synthetic tables to ``bench/out/splits/``, runs
MegaDetector's function (10,000 trials, its own unseeded RNG) and ours (10,000 trials,
then the local search), and scores every result with one straightforward pandas
implementation of the reference formula. Prints a markdown table and writes it to
``bench/out/bench_splits.md``. Times are the best of the runs (least disturbed by other
work on the machine) and their median. Each tool runs as users run it: the reference's
loop on one core, ct-splits' trial blocks on every core (one BLAS thread each).
"""

from __future__ import annotations

import os

# One BLAS thread per process: the reference's pandas loop uses one core whatever BLAS
# does, and ct-splits spreads its trial blocks over every core with its own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venvs" / "megadetector"
OUT = ROOT / "out" / "splits"
SIZES = {"small": (40, 5, 2_000), "large": (1_000, 100, 50_000)}
VAL, TEST = 0.2, 0.2
MD_DEPS = [
    "numpy",
    "pandas",
    "tqdm",
    "jsonpickle",
    "requests",
    "azure-storage-blob",
    "pillow",
    "pytest",
]

# Runs inside the MegaDetector venv: stub what the wheel lacks, time create_splits_random.
MD_RUNNER = r"""
import contextlib, io, json, sys, time, types
def stub(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        mod = ".".join(parts[:i])
        if mod in sys.modules:
            continue
        if i < len(parts):
            try:
                __import__(mod)
                continue
            except ImportError:
                pass
        m = types.ModuleType(mod)
        m.__path__ = []
        m.__getattr__ = lambda attr, _m=mod: type(attr, (Exception,), {"__module__": _m})
        sys.modules[mod] = m
        if i > 1:
            setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], m)
for missing in (
    "api.batch_processing.data_preparation.prepare_api_submission",   # 1: the old Batch API client
    "api.batch_processing.postprocessing.combine_api_outputs",
    "megadetector.data_management.megadb.megadb_utils",              # 2: MegaDB (retired)
    "megadetector.utils.sas_blob_utils",                              # 3: Azure SAS helpers
):
    stub(missing)
import pandas as pd
from megadetector.classification.create_classification_dataset import create_splits_random
df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    splits = create_splits_random(df, float(sys.argv[2]), float(sys.argv[3]))
seconds = time.perf_counter() - t
json.dump({"seconds": seconds, "splits": {k: [list(x) for x in v] for k, v in splits.items()}}, sys.stdout)
"""


def ensure_md_venv() -> Path:
    """The MegaDetector venv's python (created on first use)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(
            [
                "uv",
                "venv",
                "-q",
                "--python",
                f"{sys.version_info.major}.{sys.version_info.minor}",
                str(VENV),
            ],
            check=True,
        )
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(python), "--no-deps", "megadetector"],
            check=True,
        )
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(python), *MD_DEPS], check=True
        )
    return python


def reference_score(
    df: pd.DataFrame, splits: dict[str, list[list[str]]], val: float, test: float
) -> float:
    """The reference formula, written out plainly (pandas, one split at a time)."""
    targets = {"train": 1 - val - test, "val": val, "test": test}
    key = df["dataset"] + "/" + df["location"]
    counts = df.groupby(["label", key]).size().unstack("label", fill_value=0)
    label_count, loc_count = counts.sum(), (counts > 0).sum()
    score = 0.0
    for name, locs in splits.items():
        rows = counts.loc[[f"{d}/{loc}" for d, loc in locs]]
        score += 2 * ((rows.sum() / label_count - targets[name]) ** 2).sum()
        score += (((rows > 0).sum() / loc_count - targets[name]) ** 2).sum()
    return float(score)


def run_md(python: Path, csv: Path) -> tuple[float, dict[str, list[list[str]]]]:
    runner = OUT / "md_runner.py"
    runner.write_text(MD_RUNNER)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [str(python), str(runner), str(csv), str(VAL), str(TEST)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result = json.loads(done.stdout)
    return result["seconds"], result["splits"]


def run_ours(
    df: pd.DataFrame, seed: int, optimize: bool
) -> tuple[float, dict[str, list[list[str]]], float]:
    from ct_splits.splitting import SplitOptions, make_splits

    opts = SplitOptions(
        val_frac=VAL, test_frac=TEST, seed=seed, optimize=optimize, group_by=("location",)
    )
    t = time.perf_counter()
    result = make_splits(df, opts)
    seconds = time.perf_counter() - t
    return (
        seconds,
        {k: [list(x) for x in v] for k, v in result.splits.as_dict().items()},
        result.score,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument(
        "--seeds", type=int, default=3, help="runs per tool and size (ours: seeds 0..N-1)"
    )
    args = parser.parse_args()
    from ct_splits.synthetic import synthetic_table

    OUT.mkdir(parents=True, exist_ok=True)
    python = ensure_md_venv()
    figures: list[Any] = []
    lines = [
        "| size | tool | seconds (best) | seconds (median) | best score | median score | speed-up (best) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for size in args.sizes.split(","):
        n_locs, n_labels, n_crops = SIZES[size]
        df = synthetic_table(n_locs, n_labels, n_crops, seed=1)
        csv = OUT / f"{size}.csv"
        df.to_csv(csv, index=False)
        df = pd.read_csv(csv, dtype=str, keep_default_na=False)
        rows: dict[str, tuple[list[float], list[float]]] = {}
        for run in range(args.seeds):
            sec, splits = run_md(python, csv)
            rows.setdefault("MegaDetector create_splits_random (10,000 trials)", ([], []))
            rows["MegaDetector create_splits_random (10,000 trials)"][0].append(sec)
            rows["MegaDetector create_splits_random (10,000 trials)"][1].append(
                reference_score(df, splits, VAL, TEST)
            )
            for optimize, name in (
                (False, "ct-splits random (10,000 trials)"),
                (True, "ct-splits random + local search"),
            ):
                sec, splits, ours = run_ours(df, run, optimize)
                ref = reference_score(df, splits, VAL, TEST)
                assert abs(ref - ours) < 1e-9 * max(1.0, ref), (ref, ours)
                rows.setdefault(name, ([], []))
                rows[name][0].append(sec)
                rows[name][1].append(ref)
            print(f"{size} run {run + 1}/{args.seeds} done", file=sys.stderr)
        md_sec = float(np.min(rows["MegaDetector create_splits_random (10,000 trials)"][0]))
        figures += headline_figures(size, rows)
        label = f"{size}: {n_locs:,} locations × {n_labels} labels × {len(df):,} crops"
        for name, (secs, scores) in rows.items():
            best, med = float(np.min(secs)), float(np.median(secs))
            lines.append(
                f"| {label} | {name} | {best:.3f} | {med:.3f} | {min(scores):.4f} | {float(np.median(scores)):.4f} | {md_sec / best:.0f}× |"
            )
    table = "\n".join(lines)
    load = os.getloadavg()[0]
    table += f"\n\n{os.cpu_count()} CPUs, load average {load:.1f} at the end of the run."
    print(table)
    (ROOT / "out" / "bench_splits.md").write_text(table + "\n")
    from benchpage import Section, save

    save(Section("splits", "Splits by location", figures, table))


def headline_figures(size: str, rows: dict[str, tuple[list[float], list[float]]]) -> list[Any]:
    """ct-splits beside MegaDetector's create_splits_random: best time, median score."""
    from benchpage import Figure

    md_secs, md_scores = rows["MegaDetector create_splits_random (10,000 trials)"]
    secs, _ = rows["ct-splits random (10,000 trials)"]
    _, opt_scores = rows["ct-splits random + local search"]
    reference = "MegaDetector create_splits_random"
    return [
        Figure(
            f"{size}: 10,000 random trials, seconds",
            float(np.min(secs)),
            "s",
            float(np.min(md_secs)),
            reference,
            higher_is_better=False,
        ),
        Figure(
            f"{size}: split score (lower = closer to the fractions), median",
            float(np.median(opt_scores)),
            "",
            float(np.median(md_scores)),
            reference,
            higher_is_better=False,
        ),
    ]


if __name__ == "__main__":
    main()
