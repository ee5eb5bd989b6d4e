"""Benchmark: sampled-frame video decoding against decoding every frame and against
MegaDetector's own frame extraction, on the same clips.

Run from the repository root:  ``uv run python bench/bench_video.py [--reps 3] [--every 10]``

Clips (made once into ``bench/out/video/clips``): a slow pan across a real camera-trap
photo with sensor noise, 1280x720, 30 fps, 10 s (300 frames), encoded with PyAV three
ways camera traps write video:

- ``h264-gop30``: H.264, a keyframe every second, no B-frames (trail-camera hardware
  encoders);
- ``h264-x264``: H.264 with x264's defaults (keyframes up to 250 frames apart, B-frames);
- ``mjpeg``: Motion JPEG in AVI, every frame a keyframe (older trail cameras).

Per clip, interleaved round by round (median of ``--reps`` rounds), each timed inside its
process (imports and interpreter start-up excluded), every ``--every``-th frame wanted
(MegaDetector's typical ``frame_sample``):

  (a) ``ct_io.video.read_frames(Sampling(every_n=N))``: the sampled frames as RGB images;
  (b) every frame decoded with PyAV (frame threads), only the sampled ones converted:
      reading without seeking or skipping;
  (c) MegaDetector's ``video_utils.run_callback_on_frames(every_n_frames=N)`` with a
      callback that keeps nothing (OpenCV; the in-memory path ``process_video`` uses);
  (d) MegaDetector's ``video_utils.video_to_frames(every_n_frames=N)`` (writes JPEGs; the
      frame-folder path), shown in the details.

(a) and (c) must give the same frame numbers and identical pixels; the script checks.
MegaDetector runs from its own venv (``bench/.venvs/megadetector-video``: ``pip install
--no-deps megadetector`` plus what ``video_utils`` imports, OpenCV among them). Results go to stdout and ``bench/out/results/video.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchpage import Figure, Section, md_test_images, save

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "out" / "video"
MD_VENV = ROOT / "bench" / ".venvs" / "megadetector-video"
MEGADETECTOR_VERSION = "10.0.28"  # as the noxfile's peer session
#: what video_utils imports (path_utils imports pytest at module level and decorates with it)
MD_DEPS = ["opencv-python-headless", "numpy", "pillow", "tqdm", "jsonpickle", "requests", "pytest"]
WIDTH, HEIGHT, FPS, FRAMES = 1280, 720, 30, 300
PHOTO = "snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG"
CLIPS: dict[str, dict[str, Any]] = {
    "h264-gop30": {
        "file": "h264_gop30.mp4",
        "codec": "libx264",
        "options": {"preset": "veryfast", "crf": "23", "g": "30", "bf": "0"},
        "pix": "yuv420p",
    },
    "h264-x264": {
        "file": "h264_x264.mp4",
        "codec": "libx264",
        "options": {"preset": "veryfast", "crf": "23"},
        "pix": "yuv420p",
    },
    "mjpeg": {"file": "mjpeg.avi", "codec": "mjpeg", "options": {"q:v": "5"}, "pix": "yuvj420p"},
}
OURS, EVERY, MD, MD_FILES = (
    "(a) ct_io.video sampled",
    "(b) PyAV, every frame decoded",
    "(c) MegaDetector run_callback_on_frames",
    "(d) MegaDetector video_to_frames (JPEGs)",
)

MD_DRIVER = r"""
import hashlib, json, shutil, sys, time
import numpy as np
from megadetector.detection import video_utils

spec = json.loads(sys.argv[1])
out = {}
for name, path in spec["clips"].items():
    seen = {}
    def keep(image, frame_name):
        seen[int(frame_name[5:11])] = hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()
    t, c = time.perf_counter(), time.process_time()
    video_utils.run_callback_on_frames(path, keep, every_n_frames=spec["every"])
    mem = (time.perf_counter() - t, time.process_time() - c)
    folder = spec["tmp"] + "/" + name
    t, c = time.perf_counter(), time.process_time()
    files, _ = video_utils.video_to_frames(path, folder, every_n_frames=spec["every"])
    disk = (time.perf_counter() - t, time.process_time() - c)
    shutil.rmtree(folder, ignore_errors=True)
    out[name] = {"memory": mem, "files": disk, "frames": seen, "n_files": len(files)}
print(json.dumps(out))
"""


def md_python() -> Path:
    """MegaDetector's venv: megadetector without its dependencies, plus what video_utils imports."""
    python = MD_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(MD_VENV)], check=True)
        pip = ["uv", "pip", "install", "-q", "--python", str(python)]
        subprocess.run([*pip, "--no-deps", f"megadetector=={MEGADETECTOR_VERSION}"], check=True)
        subprocess.run([*pip, *MD_DEPS], check=True)
    return python


def make_clips() -> dict[str, Path]:
    """The three clips (made once; remade when missing)."""
    import av
    from PIL import Image

    folder = WORK / "clips"
    paths = {name: folder / spec["file"] for name, spec in CLIPS.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    photo = md_test_images() / "images" / PHOTO
    if not photo.is_file():
        photo = sorted((md_test_images() / "images").iterdir())[0]
    base = Image.open(photo).convert("RGB")
    bw = int(WIDTH * 1.3)
    pixels = np.asarray(base.resize((bw, int(bw * base.height / base.width))))
    y0 = max((pixels.shape[0] - HEIGHT) // 2, 0)
    for name, spec in CLIPS.items():
        rng = np.random.default_rng(0)
        tmp = paths[name].with_name(".tmp-" + spec["file"])
        with av.open(
            str(tmp), "w", format="mp4" if spec["file"].endswith(".mp4") else "avi"
        ) as out:
            stream = out.add_stream(spec["codec"], rate=FPS, options=spec["options"])
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, spec["pix"]
            for i in range(FRAMES):
                x = (bw - WIDTH) * i // FRAMES
                frame = pixels[y0 : y0 + HEIGHT, x : x + WIDTH].astype(np.int16)
                frame += rng.integers(-6, 7, frame.shape, dtype=np.int16)
                image = np.clip(frame, 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        tmp.replace(paths[name])
        print(f"made {paths[name]} ({paths[name].stat().st_size / 1e6:.1f} MB)")
    return paths


def digest(image: Any) -> str:
    return hashlib.md5(np.ascontiguousarray(np.asarray(image)).tobytes()).hexdigest()


Timing = tuple[float, float]  #: (wall seconds, CPU seconds of the process, all threads)


def ours(path: Path, every: int) -> tuple[Timing, dict[int, str]]:
    from ct_io.video import Sampling, read_frames

    start, cpu = time.perf_counter(), time.process_time()
    frames = [(f.index, f.image) for f in read_frames(path, Sampling(every_n=every))]
    timing = (time.perf_counter() - start, time.process_time() - cpu)
    return timing, {k: digest(im) for k, im in frames}


def every_frame(path: Path, every: int) -> Timing:
    import av

    start, cpu = time.perf_counter(), time.process_time()
    kept = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i % every == 0:
                frame.to_image()
                kept += 1
    assert kept == len(range(0, FRAMES, every))
    return time.perf_counter() - start, time.process_time() - cpu


def megadetector(python: Path, clips: dict[str, Path], every: int) -> dict[str, Any]:
    spec = {
        "clips": {k: str(v) for k, v in clips.items()},
        "every": every,
        "tmp": str(WORK / "md-frames"),
    }
    proc = subprocess.run(
        [str(python), "-c", MD_DRIVER, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"MegaDetector's video_utils failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--every", type=int, default=10, help="sample every N-th frame")
    parser.add_argument(
        "--also", type=int, default=30, help="also measure every N-th frame (details; 0: no)"
    )
    args = parser.parse_args()
    python = md_python()
    clips = make_clips()
    everies = [args.every] + ([args.also] if args.also else [])
    methods = (OURS, EVERY, MD, MD_FILES)
    times: dict[tuple[str, int, str], list[Timing]] = {
        (c, e, m): [] for c in clips for e in everies for m in methods
    }
    mismatches: dict[str, str] = {}
    load = []
    for r in range(args.reps):
        load.append(os.getloadavg()[0])
        for every in everies:
            md = megadetector(python, clips, every)
            for name, path in clips.items():
                timing, got = ours(path, every)
                times[name, every, OURS].append(timing)
                times[name, every, EVERY].append(every_frame(path, every))
                times[name, every, MD].append(tuple(md[name]["memory"]))
                times[name, every, MD_FILES].append(tuple(md[name]["files"]))
                theirs = {int(k): v for k, v in md[name]["frames"].items()}
                if r == 0 and theirs != got:
                    differ = sorted(
                        k for k in set(got) | set(theirs) if got.get(k) != theirs.get(k)
                    )
                    mismatches[f"{name} 1/{every}"] = f"frames {differ[:5]} differ"
        print(f"round {r + 1}/{args.reps} done (load {load[-1]:.1f})", flush=True)
    lines = [
        f"Clips: {WIDTH}x{HEIGHT}, {FPS} fps, {FRAMES} frames (10 s), a pan across a real photo. "
        f"Median of {args.reps} rounds; load average (1 min) at the start of each round: "
        f"{', '.join(f'{x:.1f}' for x in load)}.",
        "",
        "Wall: seconds per clip; CPU: CPU seconds of the process (all decoder threads) per"
        " clip, which a loaded machine disturbs far less.",
        "",
        "| clip | sampling | method | wall s | CPU s | sampled frames/s | × (c) wall | × (c) CPU |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]

    def med(name: str, every: int, method: str, which: int) -> float:
        return statistics.median(t[which] for t in times[name, every, method])

    figures = []
    for every in everies:
        n_sampled = len(range(0, FRAMES, every))
        for name in clips:
            md_s, md_cpu = med(name, every, MD, 0), med(name, every, MD, 1)
            for method in methods:
                s, cpu = med(name, every, method, 0), med(name, every, method, 1)
                lines.append(
                    f"| {name} | 1 in {every} | {method} | {s:.3f} | {cpu:.3f} | "
                    f"{n_sampled / s:,.1f} | {md_s / s:.2f}× | {md_cpu / cpu:.2f}× |"
                )
                print(lines[-1])
            if every != args.every:
                continue
            ours_s, ours_cpu = med(name, every, OURS, 0), med(name, every, OURS, 1)
            figures.append(
                Figure(
                    f"{name}: 1 frame in {every}, sampled frames/s",
                    n_sampled / ours_s,
                    "frames/s",
                    n_sampled / md_s,
                    "MegaDetector run_callback_on_frames",
                    target=3.0,
                )
            )
            figures.append(
                Figure(
                    f"{name}: 1 frame in {every}, sampled frames per CPU-second",
                    n_sampled / ours_cpu,
                    "frames/CPU-s",
                    n_sampled / md_cpu,
                    "MegaDetector run_callback_on_frames",
                    target=3.0,
                )
            )
            figures.append(
                Figure(
                    f"{name}: 1 frame in {every} vs decoding every frame, sampled frames/s",
                    n_sampled / ours_s,
                    "frames/s",
                    n_sampled / med(name, every, EVERY, 0),
                    "PyAV, every frame decoded",
                )
            )
    same = (
        "identical frame numbers and pixels in (a) and (c) for every clip and sampling"
        if not mismatches
        else f"MISMATCH: {mismatches}"
    )
    lines += ["", f"Check: {same}."]
    print(lines[-1])
    save(Section("video", "Video frame sampling", figures, "\n".join(lines)))


if __name__ == "__main__":
    main()
