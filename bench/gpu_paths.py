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

    python bench/gpu_paths.py            # prints a table; writes bench/out/gpu_paths.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_classify import compare, make_bundle, make_crops
from bench_train_peer import _scalars, ct_train_config, make_dataset
from benchpage import console_script

OUT = Path(__file__).resolve().parent / "out" / "gpu_paths.json"


def run(cmd: list[str]) -> tuple[bool, float, str]:
    """(succeeded, wall seconds, the output's tail)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    tail = (done.stdout + done.stderr)[-1500:]
    if done.returncode != 0:
        print(f"FAILED: {' '.join(cmd)}\n{tail}", flush=True)
    return done.returncode == 0, time.perf_counter() - start, tail


def inference(tmp: Path, crops: int) -> list[dict[str, object]]:
    folder = tmp / "crops"
    make_crops(folder, crops)
    bundle = make_bundle("resnet18", tmp / "resnet18.safetensors")
    variants = {
        "cpu fp32 (reference)": ["--device", "cpu", "--precision", "fp32"],
        "cuda fp32": ["--device", "cuda", "--precision", "fp32"],
        "cuda bf16": ["--device", "cuda", "--precision", "bf16"],
        "cuda fp16": ["--device", "cuda", "--precision", "fp16"],
        "cuda bf16 --compile": ["--device", "cuda", "--precision", "bf16", "--compile"],
    }
    rows = []
    reference = tmp / "cpu.csv"
    for i, (name, flags) in enumerate(variants.items()):
        out = reference if i == 0 else tmp / f"cuda{i}.csv"
        ok, wall, _ = run([console_script("ct-infer"), "classify", str(bundle), str(folder),
                           str(out), "--overwrite", "--batch-size", "128", *flags])  # fmt: skip
        row: dict[str, object] = {"path": f"classify {name}", "ok": ok, "wall_s": round(wall, 1)}
        if ok and i:
            n, agree, diff = compare(out, reference)
            row.update(rows=n, top1_agreement=round(agree, 4), max_prob_diff=round(diff, 4))
        rows.append(row)
        print(row, flush=True)
    return rows


def training(tmp: Path) -> list[dict[str, object]]:
    data = tmp / "data"
    make_dataset(data, 600)
    args = argparse.Namespace(batch=64, workers=None, epochs=2)
    variants = {
        "train amp fp16 (GradScaler)": {"amp": "fp16"},
        "train amp bf16 + compile": {"amp": "bf16", "compile": True},
    }
    rows = []
    for i, (name, train) in enumerate(variants.items()):
        cfg = ct_train_config(data, "resnet18", args, seed=0)
        cfg["train"].update(train, device="cuda")
        run_dir = tmp / f"run{i}"
        run_dir.mkdir()
        (run_dir / "config.yml").write_text(yaml.safe_dump(cfg))
        ok, wall, _ = run([console_script("ct-train"), "train", str(run_dir / "config.yml"),
                           "--no-resume"])  # fmt: skip
        row: dict[str, object] = {"path": name, "ok": ok, "wall_s": round(wall, 1)}
        if ok:
            final = json.loads((run_dir / "final_metrics.json").read_text())["splits"]
            rates = [v for _, _, v in _scalars(run_dir / "tensorboard")["train/images_per_s"]]
            row.update(images_per_s=round(rates[-1], 1), test_top1=final["test"]["acc_top1"])
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crops", type=int, default=1_024, help="Crops classified per run.")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script checks the CUDA code paths")
    with tempfile.TemporaryDirectory() as tmp:
        rows = inference(Path(tmp), args.crops) + training(Path(tmp))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"device": torch.cuda.get_device_name(0), "rows": rows}, indent=1))
    print(f"\n{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    for row in rows:
        print(" | ".join(f"{k}={v}" for k, v in row.items()))
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
