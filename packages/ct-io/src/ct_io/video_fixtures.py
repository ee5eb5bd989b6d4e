"""Small clips for tests and benchmarks: good ones in several codecs, and hostile ones.

Every clip is made here with PyAV, so tests carry no video files. Frame ``i`` of
:func:`write_clip` is a gradient whose brightness encodes ``i``, so a test can tell which
frame it got from the pixels alone (:func:`frame_brightness`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def frame_pixels(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i``: a flat grey of level ``16 + 4*i`` (mod 224) with a moving bright square."""
    level = 16 + (4 * i) % 224
    arr = np.full((height, width, 3), level, np.uint8)
    x = (3 * i) % max(width - 8, 1)
    arr[height // 4 : height // 4 + 8, x : x + 8] = 255
    return arr


def frame_brightness(image: Any) -> float:
    """The mean level of a frame's bottom half (where the square never is)."""
    arr = np.asarray(image.convert("L"), dtype=np.float64)
    return float(arr[arr.shape[0] // 2 :].mean())


def frame_of_brightness(level: float) -> int:
    """Which frame (< 56) :func:`frame_pixels` painted at ``level``."""
    return round((level - 16) / 4)


def write_clip(
    path: str | os.PathLike[str],
    *,
    frames: int = 24,
    fps: int = 10,
    width: int = 64,
    height: int = 48,
    codec: str = "h264",
    gop: int = 10,
    bframes: int = 2,
    faststart: bool = False,
) -> Path:
    """Write a clip: ``h264`` (MP4, libx264), ``mjpeg`` (AVI, every frame a keyframe) or
    ``mpeg4`` (AVI). ``faststart`` puts the MP4 index first (as cameras that stream do)."""
    import av

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {}
    if faststart:
        options["movflags"] = "+faststart"
    with av.open(str(p), "w", options=options) as out:
        stream: Any
        if codec == "h264":
            opts = {"g": str(gop), "bf": str(bframes), "preset": "veryfast", "threads": "1"}
            stream = out.add_stream("libx264", rate=fps, options=opts)
            stream.pix_fmt = "yuv420p"
        elif codec == "mjpeg":
            stream = out.add_stream("mjpeg", rate=fps)
            stream.pix_fmt = "yuvj420p"
        else:
            stream = out.add_stream(codec, rate=fps, options={"g": str(gop)})
            stream.pix_fmt = "yuv420p"
        stream.width, stream.height = width, height
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_pixels(i, width, height), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return p


def write_audio_only(path: str | os.PathLike[str]) -> Path:
    """An MP4 with one AAC audio stream and no video."""
    import av

    p = Path(path)
    with av.open(str(p), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return p


#: Hostile clip name → words its failure reason contains.
HOSTILE_CLIPS = {
    "zero.mp4": "empty file",
    "text.mp4": "not a video",
    "truncated.mp4": "not a video",  # index (moov) at the end: cut off
    "truncated_faststart.mp4": "truncated",  # index first: frames missing
    "truncated.avi": "truncated",
    "audio_only.mp4": "no video stream",
    "unknown_codec.avi": "unknown video codec",
}


def write_hostile_clips(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Write every clip of :data:`HOSTILE_CLIPS` into ``folder``; returns that mapping."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("these are field notes, not a video\n" * 20, encoding="utf-8")
    good = write_clip(d / ".good.mp4", frames=30).read_bytes()
    (d / "truncated.mp4").write_bytes(good[: len(good) // 2])
    fast = write_clip(d / ".fast.mp4", frames=30, faststart=True).read_bytes()
    (d / "truncated_faststart.mp4").write_bytes(fast[: len(fast) // 2])
    avi = write_clip(d / ".good.avi", frames=30, codec="mjpeg").read_bytes()
    (d / "truncated.avi").write_bytes(avi[: len(avi) // 2])
    (d / "unknown_codec.avi").write_bytes(avi.replace(b"MJPG", b"QQQQ"))
    for name in (".good.mp4", ".fast.mp4", ".good.avi"):
        (d / name).unlink()
    write_audio_only(d / "audio_only.mp4")
    return dict(HOSTILE_CLIPS)
