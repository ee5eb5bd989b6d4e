"""Crops per second of ``ct-infer classify`` against a plain fp32 batch-1 loop.

The baseline is how the seed's ``run_classifier.py`` runs by default: one crop at a time,
full-size PIL decode, ``Resize((s, s))`` + ``ToTensor`` + ``Normalize``, an fp32 forward
pass and a softmax, all in one Python loop. ``ct-infer classify`` runs as a separate
process, timed whole (start-up, model load, decode, inference, writing the CSV).

Crops are real MegaDetector crops of ../shared/data/md-test-images (tightest square,
full resolution, as ct-crop writes them), repeated under new names up to ``--crops``.

    python bench/bench_classify.py                       # CPU: resnet18 and efficientnet-b0 at 224
    python bench/bench_classify.py --gpu                 # GPU: efficientnet-b3 at 300 px
    python bench/bench_classify.py --markdown docs/benchmarks-infer.md
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

from benchpage import md_test_images

ROOT = Path(__file__).resolve().parents[1]
MD_DIR = md_test_images()


def make_crops(folder: Path, count: int) -> list[str]:
    """Write ``count`` JPEG crops (real detections, cycled) into ``folder``."""
    from PIL import Image

    from ct_crop.render import crop_box

    md = json.loads((MD_DIR / "md_output_v5a.json").read_text())
    crops = []
    for im in md["images"]:
        with Image.open(MD_DIR / "images" / im["file"]) as img:
            rgb = img.convert("RGB")
        for det in im["detections"] or []:
            if det["conf"] >= 0.2:
                crops.append(crop_box(rgb, det["bbox"]))
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"crop{i:06d}.jpg"
        crops[i % len(crops)].save(folder / name, quality=90)
        names.append(name)
    return names


def make_bundle(backbone: str, path: Path, classes: int = 20) -> Path:
    from ct_infer.backbones import build_backbone
    from ct_infer.bundle import make_meta, save_bundle

    built = build_backbone(backbone, classes)
    save_bundle(
        path,
        built.module,
        make_meta(
            backbone, [f"class{i}" for i in range(classes)], built.preprocessing, built.options
        ),
    )
    return path


def baseline(bundle: Path, folder: Path, names: list[str]) -> float:
    """Crops/s of the plain loop (model load excluded, in its favour)."""
    import torch
    from PIL import Image
    from torchvision import transforms

    from ct_infer.backbones import model_from_bundle
    from ct_infer.bundle import load_bundle

    b = load_bundle(bundle)
    model = model_from_bundle(b)
    prep = b.meta.preprocessing
    tf = transforms.Compose(
        [
            transforms.Resize((prep.input_size, prep.input_size)),
            transforms.ToTensor(),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    start = time.perf_counter()
    with torch.no_grad():
        for name in names:
            with Image.open(folder / name) as im:
                x = tf(im.convert("RGB"))
            model(x[None].to(device)).softmax(dim=1).cpu()
    return len(names) / (time.perf_counter() - start)


def ours(bundle: Path, folder: Path, count: int, extra: list[str]) -> tuple[float, float]:
    """(whole-process crops/s, steady-state crops/s as the command reports it)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv.gz"
        cmd = [
            sys.executable,
            "-m",
            "ct_infer.cli",
            "classify",
            str(bundle),
            str(folder),
            str(out),
            *extra,
        ]
        start = time.perf_counter()
        result = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
        )
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"classify failed:\n{result.stdout}\n{result.stderr}")
        steady = float(result.stdout.split("classified (")[1].split("/s")[0])
    return count / wall, steady


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="EfficientNet-B3 at 300 px on the GPU (target >= 1,500 crops/s).",
    )
    parser.add_argument(
        "--crops",
        type=int,
        default=None,
        help="Crops classified by ct-infer (default 1,000 CPU / 20,000 GPU).",
    )
    parser.add_argument(
        "--baseline-crops",
        type=int,
        default=None,
        help="Crops for the slow baseline loop (default 150 CPU / 2,000 GPU).",
    )
    parser.add_argument("--markdown", type=Path, help="Also write the table to this Markdown file.")
    args = parser.parse_args()
    if args.gpu:
        configs = [
            (
                "efficientnet-b3",
                [
                    "--batch-size",
                    "256",
                    "--workers",
                    str(min(16, os.cpu_count() or 1)),
                    "--precision",
                    "auto",
                    "--device",
                    "cuda",
                ],
            )
        ]
        count, base_count = args.crops or 20_000, args.baseline_crops or 2_000
    else:
        configs = [
            (b, ["--workers", os.environ.get("BENCH_WORKERS", "2"), "--precision", "auto"])
            for b in ("resnet18", "efficientnet-b0")
        ]
        count, base_count = args.crops or 1_000, args.baseline_crops or 150
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "crops"
        names = make_crops(folder, count)
        for backbone, flags in configs:
            bundle = make_bundle(backbone, Path(tmp) / f"{backbone}.safetensors")
            # the baseline runs before and after ct-infer; the faster of the two counts, so
            # load from other processes on a shared machine does not flatter the speed-up
            before = baseline(bundle, folder, names[:base_count])
            whole, steady = ours(bundle, folder, count, flags)
            base = max(before, baseline(bundle, folder, names[:base_count]))
            rows.append((backbone, " ".join(flags), base, whole, steady, whole / base))
            print(
                f"{backbone}: baseline {base:.1f}/s, ct-infer {whole:.1f}/s whole process ({steady:.1f}/s steady), {whole / base:.1f}x",
                flush=True,
            )
    import torch

    device = (
        torch.cuda.get_device_name(0)
        if args.gpu and torch.cuda.is_available()
        else f"CPU, {len(os.sched_getaffinity(0))} cores"
    )
    from ct_infer.precision import resolve_precision

    ran = resolve_precision("auto", "cuda" if args.gpu else "cpu").describe()
    lines = [
        f"Device: {device}; {count} crops for ct-infer, {base_count} for the baseline; torch {torch.__version__}; "
        f"`--precision auto` ran {ran}.",
        "",
        "| backbone | ct-infer flags | baseline fp32 batch-1 (crops/s) | ct-infer classify, whole process (crops/s) | ct-infer steady state (crops/s) | speed-up (whole process) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *[f"| {b} | `{f}` | {x:.1f} | {w:.1f} | {s:.1f} | {r:.1f}x |" for b, f, x, w, s, r in rows],
    ]
    print("\n".join(lines))
    from benchpage import Figure, Section, save

    size = 300 if args.gpu else 224  # the backbones' default input sizes
    figures = [
        Figure(f"classify {b} @{size}, whole process", w, "crops/s", x,
               "plain fp32 batch-1 loop (run_classifier.py's default)", target=10.0)
        for b, _f, x, w, _s, _r in rows
    ]  # fmt: skip
    if args.gpu:
        figures += [
            Figure(f"classify {b} @{size}, steady state", s, "crops/s", bound=1500)
            for b, _f, _x, _w, s, _r in rows
        ]
    save(
        Section(
            "classify_gpu" if args.gpu else "classify",
            "Batch classification (ct-infer classify)",
            figures,
            "\n".join(lines),
            device=device,
            gpu=args.gpu,
        )
    )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
