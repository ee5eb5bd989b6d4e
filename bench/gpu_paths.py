"""The CUDA code paths, run once on a GPU machine: does each one run, and does it give what
the CPU gives? (CI has no GPU; this is the check the GPU machine gets.)

Inference: ``ct-infer classify`` of the same crops with one bundle (resnet18 @224, random
weights, 20 labels) on the CPU in fp32 (the reference), then on CUDA in fp32, bf16 and fp16
autocast and with ``--compile`` (pinned host memory and non-blocking copies are what the
CUDA loader does). Each CUDA run must write the same rows; the table gives the top-1
agreement and the largest probability difference against the CPU.

Training: ``ct-train train`` for two epochs on CUDA with ``train.amp: fp16`` (the gradient
scaler's path) and with ``amp: bf16`` + ``train.compile: true``. Each must finish with
``final_metrics.json``; the table gives its steady images/s.

DDP over NCCL needs two GPUs (NCCL refuses two ranks on one device, and ct-train runs a
single process without a process group), so a one-GPU machine does not exercise it.

Each row is saved as it is measured (a run cut short keeps what it did), into the page's
GPU table (``bench/out/results/gpu_paths.json``).

    python bench/gpu_paths.py                      # CUDA paths, then the page section
    python bench/gpu_paths.py --rows-from LOG      # the section from a run's printed rows
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from bench_classify import compare, make_bundle, make_crops
from bench_train_peer import _scalars, ct_train_config, make_dataset
from benchpage import Figure, Section, console_script, save

Row = dict[str, object]
CLASSIFY = {
    "cpu fp32 (reference)": ["--device", "cpu", "--precision", "fp32"],
    "cuda fp32": ["--device", "cuda", "--precision", "fp32"],
    "cuda bf16": ["--device", "cuda", "--precision", "bf16"],
    "cuda fp16": ["--device", "cuda", "--precision", "fp16"],
    "cuda bf16 --compile": ["--device", "cuda", "--precision", "bf16", "--compile"],
}
TRAIN: dict[str, dict[str, object]] = {
    "train amp fp16 (GradScaler)": {"amp": "fp16"},
    "train amp bf16 + compile": {"amp": "bf16", "compile": True},
}
PATHS = [*(f"classify {name}" for name in CLASSIFY), *TRAIN]


def run(cmd: list[str]) -> tuple[bool, float]:
    """(succeeded, wall seconds); a failure prints the command and its output's tail."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"FAILED: {' '.join(cmd)}\n{(done.stdout + done.stderr)[-1500:]}", flush=True)
    return done.returncode == 0, time.perf_counter() - start


def save_section(rows: list[Row], device: str, measured: str | None = None) -> None:
    """The rows as the page's "CUDA code paths" section (GPU table)."""
    figures, lines = [], ["| path | ran | wall s | rows | top-1 agreement with CPU fp32 "
                          "| largest probability difference | images/s |",
                          "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['path']} | {'yes' if r['ok'] else '**failed**'} | {r['wall_s']} "
            f"| {r.get('rows', '')} | {r.get('top1_agreement', '')} "
            f"| {r.get('max_prob_diff', '')} | {r.get('images_per_s', '')} |"
        )
        if "top1_agreement" in r:
            agree = float(r["top1_agreement"])  # type: ignore[arg-type]
            figures.append(Figure(f"{r['path']}: top-1 agreement with CPU fp32", 100 * agree,
                                  "%", bound=99.0))  # fmt: skip
        elif "images_per_s" in r:
            rate = float(r["images_per_s"])  # type: ignore[arg-type]
            figures.append(Figure(f"{r['path']} (resnet18 @224, batch 64)", rate, "img/s"))
    details = (
        "Each CUDA code path run once through the command users run (`ct-infer classify`, "
        "`ct-train train`), resnet18 with random weights. DDP over NCCL needs two GPUs and "
        "was not exercised.\n\n" + "\n".join(lines)
    )
    if missing := [p for p in PATHS if p not in {r["path"] for r in rows}]:
        details += f"\n\nNot reached in this run (cut short): {', '.join(missing)}."
    when = {"measured": measured} if measured else {}
    save(Section("gpu_paths", "CUDA code paths", figures, details, device=device, gpu=True, **when))


def inference(tmp: Path, crops: int, done: list[Row], device: str) -> None:
    """``ct-infer classify`` on the CPU in fp32, then on CUDA in each precision."""
    folder = tmp / "crops"
    make_crops(folder, crops)
    bundle = make_bundle("resnet18", tmp / "resnet18.safetensors")
    reference = tmp / "cpu.csv"
    for i, (name, flags) in enumerate(CLASSIFY.items()):
        out = reference if i == 0 else tmp / f"cuda{i}.csv"
        ok, wall = run([console_script("ct-infer"), "classify", str(bundle), str(folder),
                           str(out), "--overwrite", "--batch-size", "128", *flags])  # fmt: skip
        row: dict[str, object] = {"path": f"classify {name}", "ok": ok, "wall_s": round(wall, 1)}
        if ok and i:
            n, agree, diff = compare(out, reference)
            row.update(rows=n, top1_agreement=round(agree, 4), max_prob_diff=round(diff, 4))
        record(row, done, device)


def record(row: Row, done: list[Row], device: str) -> None:
    """Print one row and save every row so far."""
    print(row, flush=True)
    done.append(row)
    save_section(done, device)


def training(tmp: Path, done: list[Row], device: str) -> None:
    data = tmp / "data"
    make_dataset(data, 600)
    args = argparse.Namespace(batch=64, workers=None, epochs=2)
    for i, (name, train) in enumerate(TRAIN.items()):
        cfg = ct_train_config(data, "resnet18", args, seed=0)
        cfg["train"].update(train, device="cuda")
        run_dir = tmp / f"run{i}"
        run_dir.mkdir()
        (run_dir / "config.yml").write_text(yaml.safe_dump(cfg))
        ok, wall = run([console_script("ct-train"), "train", str(run_dir / "config.yml"),
                           "--no-resume"])  # fmt: skip
        row: dict[str, object] = {"path": name, "ok": ok, "wall_s": round(wall, 1)}
        if ok:
            final = json.loads((run_dir / "final_metrics.json").read_text())["splits"]
            rates = [v for _, _, v in _scalars(run_dir / "tensorboard")["train/images_per_s"]]
            row.update(images_per_s=round(rates[-1], 1), test_top1=final["test"]["acc_top1"])
        record(row, done, device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crops", type=int, default=1_024, help="Crops classified per run.")
    parser.add_argument(
        "--rows-from",
        type=Path,
        help="Save the section from the rows a GPU run printed (its log), without running.",
    )
    parser.add_argument("--device-name", default="NVIDIA H200", help="With --rows-from.")
    args = parser.parse_args()
    if args.rows_from:
        rows = [ast.literal_eval(line) for line in args.rows_from.read_text().splitlines()
                if line.startswith("{'path'")]  # fmt: skip
        mtime = datetime.fromtimestamp(args.rows_from.stat().st_mtime, UTC)
        save_section(rows, args.device_name, mtime.strftime("%Y-%m-%d %H:%M UTC"))
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script checks the CUDA code paths")
    device = torch.cuda.get_device_name(0)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        inference(Path(tmp), args.crops, rows, device)
        training(Path(tmp), rows, device)
    print(f"\n{device}, torch {torch.__version__}")
    for row in rows:
        print(" | ".join(f"{k}={v}" for k, v in row.items()))
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
