"""``ct-infer classify`` against MegaDetector's own ``run_classifier.py``, whole process.

Both sides classify the same crops with the same network: ``ct-infer classify`` runs the
bundle (``.safetensors``); MegaDetector's ``megadetector.classification.run_classifier``
runs the TorchScript export of that bundle (``ct_infer.export``: a traced network taking
normalized input, as ``run_classifier.py`` feeds it), from its own venv
(``bench/megadetector_env.py``). MegaDetector runs (a) with its defaults (``--batch-size 1
--num-workers 8``) and (b) with the seed's documented flags (``--batch-size 64
--num-workers 8``); 8 data-loader processes on a 2-core machine means 8 processes, each
importing torch, sharing those 2 cores with the model. ``ct-infer classify`` runs with its
defaults (``--precision auto``, workers = CPU count, batch 32 on CPU), and on the CPU
once more with ``--runtime onnxruntime`` (its own row): the bundle exported to ONNX and run
by ONNX Runtime, the export made in the first round into a fresh cache and reused after.

Same preprocessing: the bundle is made with ``resize: center-crop, interpolation:
bicubic``, which is what ``run_classifier.py`` does (``Resize(size, BICUBIC)`` of the
short side, ``CenterCrop``, ``ToTensor``, ImageNet ``Normalize``). ct-infer additionally
decodes JPEGs in draft mode (at 1/2, 1/4 or 1/8 scale while both sides stay ≥ the input
size), so pixels differ slightly; the script checks both wrote the same rows, the top-1
agreement and the largest probability difference.

Crops are real MegaDetector crops of ../shared/data/md-test-images (tightest square, full
resolution, as ct-crop writes them), repeated under new names up to ``--crops``. The
runs are interleaved (MegaDetector (a), (b), ct-infer per backbone and round) and the load
average is recorded beside each; the model's forward pass alone (fp32, batch 32, random
input, in this process) is measured too: the ceiling both sides are bounded by.

    python bench/bench_classify.py                       # CPU: resnet18 and efficientnet-b0 at 224
    python bench/bench_classify.py --gpu                 # GPU: efficientnet-b3 at 300 px
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchpage import console_script, md_test_images
from megadetector_env import compile_bytecode, md_env, md_python

ROOT = Path(__file__).resolve().parents[1]
MD_DIR = md_test_images()
MD_DEFAULTS = ["--batch-size", "1", "--num-workers", "8"]
MD_SEED = ["--batch-size", "64", "--num-workers", "8"]
#: ct-infer on ONNX Runtime (the bundle exported once to a cached ONNX file), a row of its own
ORT = "ct-infer classify --runtime onnxruntime"
ORT_FLAGS = ["--runtime", "onnxruntime"]


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
    """A bundle preprocessing as run_classifier.py does (short side bicubic + centre crop)."""
    import attrs
    import torch

    from ct_infer.backbones import build_backbone
    from ct_infer.bundle import make_meta, save_bundle

    torch.manual_seed(0)
    built = build_backbone(backbone, classes)
    prep = attrs.evolve(built.preprocessing, resize="center-crop", interpolation="bicubic")
    labels = [f"class{i}" for i in range(classes)]
    save_bundle(path, built.module, make_meta(backbone, labels, prep, built.options))
    return path


def export_for_megadetector(bundle: Path, folder: Path) -> tuple[Path, Path]:
    """(TorchScript file, index-to-name JSON) for run_classifier.py."""
    from ct_infer.bundle import load_bundle
    from ct_infer.export import export_bundle, max_abs_difference

    b = load_bundle(bundle)
    script = export_bundle(b, folder / f"{bundle.stem}.pt", "torchscript")
    if (diff := max_abs_difference(b, script)) > 1e-3:
        raise SystemExit(f"TorchScript export differs from the bundle by {diff:g}")
    names = folder / f"{bundle.stem}-index_to_name.json"
    names.write_text(json.dumps({str(i): n for i, n in enumerate(b.meta.labels)}))
    return script, names


@dataclass
class Run:
    wall: float
    cpu: float
    load: float  #: 1-minute load average when it started
    steady: float | None = None  #: ct-infer's own crops/s over the classify loop


def timed(cmd: list[str]) -> tuple[Run, str]:
    env = md_env(COLUMNS="200")
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, load), done.stdout


def run_ours(bundle: Path, folder: Path, out: Path, flags: list[str]) -> Run:
    out.unlink(missing_ok=True)
    cmd = [console_script("ct-infer"), "classify", str(bundle), str(folder),
           str(out), "--overwrite", *flags]  # fmt: skip
    run, stdout = timed(cmd)
    run.steady = float(stdout.split("classified (")[1].split("/s")[0])
    return run


def run_md(script: Path, names: Path, folder: Path, out: Path, size: int, flags: list[str]) -> Run:
    out.unlink(missing_ok=True)
    cmd = [str(md_python()), "-m", "megadetector.classification.run_classifier", str(script),
           str(folder), str(out), "--classifier-categories", str(names),
           "--image-size", str(size), *flags]  # fmt: skip
    return timed(cmd)[0]


def compare(ours: Path, theirs: Path) -> tuple[int, float, float]:
    """(rows, top-1 agreement, largest |Δ probability|); raises unless the same rows."""
    import pandas as pd

    a = pd.read_csv(ours).set_index("path").sort_index()
    b = pd.read_csv(theirs).set_index("path").sort_index()
    b.index = b.index.str.removeprefix("./")  # run_classifier walks the folder: "./name"
    if len(a) != len(b) or not a.index.equals(b.index) or list(a.columns) != list(b.columns):
        raise SystemExit(f"different rows: ct-infer {len(a)}, run_classifier {len(b)}")
    agree = float((a.to_numpy().argmax(1) == b.to_numpy().argmax(1)).mean())
    return len(a), agree, float((a - b).abs().to_numpy().max())


def model_step(bundle: Path, batch: int = 32, batches: int = 6) -> float:
    """Crops/s of the forward pass alone (fp32, random input): the ceiling of both sides."""
    import torch

    from ct_infer.backbones import model_from_bundle
    from ct_infer.bundle import load_bundle

    b = load_bundle(bundle)
    model = model_from_bundle(b).eval()
    size = b.meta.preprocessing.input_size
    x = torch.randn(batch, 3, size, size)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(batches):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def loader_alone(bundle: Path, folder: Path, workers: int, batch: int, pin: bool) -> float:
    """Crops/s of ct-infer's decoding alone (its dataset and loader, no network), after the
    first batch: the data side's ceiling."""
    from ct_infer.bundle import load_bundle
    from ct_infer.data import CropFilesDataset, iterate_batches, list_image_files

    prep = load_bundle(bundle).meta.preprocessing
    dataset = CropFilesDataset(folder, list_image_files(folder), prep)
    seen, start = 0, 0.0
    for i, b in enumerate(iterate_batches(dataset, batch_size=batch, workers=workers,
                                          pin_memory=pin)):  # fmt: skip
        if i == 0:
            start = time.perf_counter()
        else:
            seen += len(b.indices)
    return seen / (time.perf_counter() - start)


def gpu_model_alone(bundle: Path, batch: int = 256, batches: int = 20) -> float:
    """Crops/s of the network alone on CUDA in the precision ``auto`` picks (channels-last,
    random input, CUDA-synchronized): the model side's ceiling."""
    import torch

    from ct_infer.backbones import model_from_bundle
    from ct_infer.bundle import load_bundle
    from ct_infer.precision import resolve_precision

    b = load_bundle(bundle)
    model = model_from_bundle(b).eval().cuda().to(memory_format=torch.channels_last)
    dtype = resolve_precision("auto", "cuda").dtype()
    size = b.meta.preprocessing.input_size
    x = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
        torch.cuda.synchronize()
    return batch * batches / (time.perf_counter() - start)


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
        "--crops", type=int, default=None, help="Crops classified (default 2,000 CPU / 20,000 GPU)."
    )
    parser.add_argument("--rounds", type=int, default=1, help="Interleaved rounds (median kept).")
    parser.add_argument(
        "--backbones", nargs="+", default=None, help="Backbones (default resnet18 efficientnet-b0)."
    )
    args = parser.parse_args()
    from ct_infer.data import default_workers

    if args.gpu:
        backbones, size = args.backbones or ["efficientnet-b3"], 300
        workers, batch = min(16, os.cpu_count() or 1), 256
        ours_flags = ["--batch-size", str(batch), "--workers", str(workers),
                      "--precision", "auto", "--device", "cuda"]  # fmt: skip
        md_flags = {"(a) defaults": [*MD_DEFAULTS, "--device", "0"],
                    "(b) seed flags": [*MD_SEED, "--device", "0"]}  # fmt: skip
        count = args.crops or 20_000
    else:
        backbones, size = args.backbones or ["resnet18", "efficientnet-b0"], 224
        workers, batch = default_workers(), 32  # ct-infer's defaults on the CPU
        ours_flags = []  # its defaults: --precision auto, workers = CPU count, batch 32
        md_flags = {"(a) defaults": MD_DEFAULTS, "(b) seed flags": MD_SEED}
        count = args.crops or 2_000
    compile_bytecode(md_python())
    compile_bytecode(Path(sys.executable), *(ROOT / "packages").glob("*/src"))
    from ct_infer.precision import resolve_precision

    ran = resolve_precision("auto", "cuda" if args.gpu else "cpu").describe()
    table = [
        "| backbone | tool | wall s | crops/s | CPU s | load at start | ct-infer × this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    checks, figures_in = [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CT_INFER_CACHE"] = str(Path(tmp) / "onnx-cache")  # round 1 pays the export
        folder = Path(tmp) / "crops"
        make_crops(folder, count)
        for backbone in backbones:
            bundle = make_bundle(backbone, Path(tmp) / f"{backbone}.safetensors")
            script, names = export_for_megadetector(bundle, Path(tmp))
            ort = [] if args.gpu else [ORT]  # ONNX Runtime runs on the CPU
            runs: dict[str, list[Run]] = {"ct-infer classify": [], **{k: [] for k in ort},
                                          **{k: [] for k in md_flags}}  # fmt: skip
            outs = {k: Path(tmp) / f"{backbone}-{i}.csv" for i, k in enumerate(runs)}
            for _ in range(args.rounds):
                # the target's comparison first, so a run cut short still has it
                for key in ("(b) seed flags", "ct-infer classify", *ort, "(a) defaults"):
                    if key.startswith("ct-infer"):
                        flags = [*ours_flags, *(ORT_FLAGS if key == ORT else [])]
                        runs[key].append(run_ours(bundle, folder, outs[key], flags))
                    else:
                        runs[key].append(
                            run_md(script, names, folder, outs[key], size, md_flags[key])
                        )
                    r = runs[key][-1]
                    print(f"{backbone} {key}: {r.wall:.1f} s wall, {r.cpu:.1f} CPU s, load "
                          f"{r.load:.1f}", flush=True)  # fmt: skip
            ceiling = gpu_model_alone(bundle) if args.gpu else model_step(bundle)
            decode = loader_alone(bundle, folder, workers, batch, pin=args.gpu)
            wall = {k: statistics.median(r.wall for r in v) for k, v in runs.items()}
            cpus = {k: statistics.median(r.cpu for r in v) for k, v in runs.items()}
            for key, rs in runs.items():
                cpu = cpus[key]
                load = statistics.median(r.load for r in rs)
                table.append(
                    f"| {backbone} | {key if key.startswith('ct') else 'run_classifier ' + key} "
                    f"| {wall[key]:.1f} | {count / wall[key]:.1f} | {cpu:.1f} | {load:.1f} "
                    f"| {wall[key] / wall['ct-infer classify']:.2f}× |"
                )
            for ours, key in [*(("ct-infer classify", k) for k in md_flags),
                              *((o, "(b) seed flags") for o in ort)]:  # fmt: skip
                rows, agree, diff = compare(outs[ours], outs[key])
                checks.append(
                    f"{backbone}, {ours} vs run_classifier {key}: {rows} rows on both sides; "
                    f"top-1 agreement {agree:.1%}; largest probability difference {diff:.3f}"
                )
            steady = statistics.median(r.steady or 0 for r in runs["ct-infer classify"])
            figures_in.append((backbone, wall, steady, ceiling, cpus, decode))
            write_results(args, count, size, ran, md_flags, table, checks, figures_in)


def write_results(
    args: argparse.Namespace,
    count: int,
    size: int,
    ran: str,
    md_flags: dict[str, list[str]],
    table: list[str],
    checks: list[str],
    figures_in: list[tuple[str, dict[str, float], float, float, dict[str, float], float]],
) -> None:
    """Print the table and save the page section (after every backbone, so a run cut short
    keeps what it measured)."""
    import torch

    lines = [
        f"{count:,} crops; ct-infer classify with its defaults (`--precision auto` ran {ran}); "
        "MegaDetector `run_classifier` from "
        "megadetector 10.0.28 on the TorchScript export of the same bundle; torch "
        f"{torch.__version__}; median of {args.rounds} interleaved round(s); whole processes.",
        "",
        *table,
        "",
        "ct-infer steady state (its own count over the classify loop), and the two ceilings: "
        "the model's forward pass alone ("
        + ("CUDA, the precision auto picks, batch 256" if args.gpu else "fp32, batch 32")
        + ", random input) and ct-infer's decoding alone (its loader with the same workers, "
        "no network):",
        "",
        *[
            f"- {b}: ct-infer steady {s:.1f} crops/s; forward pass alone {c:.1f} crops/s; "
            f"decoding alone {d:.1f} crops/s"
            for b, _w, s, c, _cpu, d in figures_in
        ],
        "",
        "Same work: " + "; ".join(checks) + ". Differences come from ct-infer's JPEG draft "
        "decoding (reduced-scale decode before the same bicubic resize).",
    ]
    print("\n".join(lines))
    from benchpage import Figure, Section, save

    figures = []
    for b, wall, _s, _c, cpus, _d in figures_in:
        ours_rate = count / wall["ct-infer classify"]
        seed = md_flags["(b) seed flags"]
        figures.append(
            Figure(
                f"classify {b} @{size}, CPU seconds of all processes, vs run_classifier seed flags",
                cpus["ct-infer classify"],
                "CPU s",
                cpus["(b) seed flags"],
                f"MegaDetector run_classifier.py {' '.join(seed[:4])}",
                higher_is_better=False,
            )
        )
        for key in md_flags:
            figures.append(
                Figure(
                    f"classify {b} @{size}, whole process, vs run_classifier {key[4:]}",
                    ours_rate,
                    "crops/s",
                    count / wall[key],
                    f"MegaDetector run_classifier.py {' '.join(md_flags[key][:4])}",
                    target=2.0 if key.startswith("(b)") else None,
                )
            )
        figures += [
            Figure(
                f"classify {b} @{size} with --runtime onnxruntime, whole process, "
                "vs run_classifier seed flags",
                count / wall[ORT],
                "crops/s",
                count / wall["(b) seed flags"],
                f"MegaDetector run_classifier.py {' '.join(seed[:4])}",
                target=2.0,
            )
            for _ in ([] if args.gpu else [ORT])
        ]
    if args.gpu:
        figures += [
            Figure(f"classify {b} @{size}, steady state", s, "crops/s", bound=1500)
            for b, _w, s, _c, _cpu, _d in figures_in
        ]
    device = (
        torch.cuda.get_device_name(0)
        if args.gpu and torch.cuda.is_available()
        else Section.__dataclass_fields__["device"].default_factory()  # type: ignore[misc]
    )
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


if __name__ == "__main__":
    main()
