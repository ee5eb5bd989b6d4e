"""Reading camera-trap video clips: sampled frames as RGB images with their frame number.

Decoding uses PyAV (FFmpeg's libraries, bundled in the ``av`` wheel; ``pip install
'ct-io[video]'``). Only what the sampled frames need is decoded:

- packets are read (demuxed) without decoding, one group of pictures (GOP, a keyframe
  and the frames that depend on it) at a time;
- a GOP holding no wanted frame is never decoded; in one that does, decoding stops at
  the last wanted frame, and unwanted frames nothing else refers to (non-reference
  B-frames) are skipped by the decoder (``skip_frame=NONREF``);
- an intra-only clip (MJPEG AVI: every frame a keyframe) decodes only wanted frames.

Frame numbers count frames from 0 in presentation order, as MegaDetector (and OpenCV)
number them, so ``clip.mp4/frame000120.jpg`` means the same frame to both tools; the
pixels equal those of decoding every frame. A clip that cannot be read — missing,
empty, not a video, no video stream, a codec FFmpeg lacks, truncated or corrupt — raises
:class:`VideoError` with a one-line reason, never an FFmpeg traceback.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast

from attrs import field, frozen

from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    from PIL import Image

#: File endings treated as video (MegaDetector's list, compared case-insensitively).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mpeg", ".mpg", ".mov", ".mkv", ".flv")
_FRAME_FILE = re.compile(
    r"^(?P<video>.+(?:" + "|".join(re.escape(e) for e in VIDEO_EXTENSIONS) + r"))"
    r"/frame(?P<n>\d+)\.jpg$",
    re.IGNORECASE,
)
INSTALL_HINT = "reading video needs PyAV: pip install 'ct-io[video]' (or pip install av)"


class VideoError(CamtrapError):
    """A clip that cannot be read; ``reason`` says why in one line, ``kind`` classifies it
    as ``ct-crop analyze-failures`` does: ``nonexistent``, ``truncated`` or ``bad``."""

    def __init__(self, path: str | os.PathLike[str], reason: str, kind: str = "bad") -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason
        self.kind = kind


def is_video_file(name: str) -> bool:
    """True when ``name`` ends with a video extension (MegaDetector's test)."""
    return PurePosixPath(name.replace("\\", "/")).suffix.lower() in VIDEO_EXTENSIONS


def frame_file(video: str, frame_number: int) -> str:
    """A frame's name as MegaDetector writes it: ``clip.mp4/frame000120.jpg``."""
    return f"{video}/frame{frame_number:06d}.jpg"


def parse_frame_file(name: str) -> tuple[str, int] | None:
    """``(video, frame number)`` of a frame name, or None for anything else."""
    m = _FRAME_FILE.match(name.replace("\\", "/"))
    return (m["video"], int(m["n"])) if m else None


def source_file(name: str) -> str:
    """The file an image name comes from: a frame's clip, else the name itself."""
    ref = parse_frame_file(name)
    return ref[0] if ref is not None else name


def _frame_set(frames: Iterable[int] | None) -> frozenset[int] | None:
    return None if frames is None else frozenset(int(x) for x in frames)


@frozen
class Sampling:
    """Which frames to read: every ``every_n``-th (from frame 0), ``per_second`` frames per
    second (the first frame at or after each 1/``per_second`` s), or exactly ``frames``."""

    every_n: int | None = None
    per_second: float | None = None
    frames: frozenset[int] | None = field(default=None, converter=_frame_set)

    def __attrs_post_init__(self) -> None:
        given = [x is not None for x in (self.every_n, self.per_second, self.frames)]
        if sum(given) > 1:
            raise CamtrapError(
                "choose one frame sampling: every N-th frame, N per second, or a list"
            )
        if self.every_n is not None and self.every_n < 1:
            raise CamtrapError(f"every-n-frames must be >= 1, got {self.every_n}")
        if self.per_second is not None and not (
            math.isfinite(self.per_second) and self.per_second > 0
        ):
            raise CamtrapError(f"frames per second must be > 0, got {self.per_second}")

    def describe(self) -> str:
        """e.g. ``every 10th frame``, ``1 frame/s``, ``3 listed frames``, ``every frame``."""
        if self.frames is not None:
            return f"{len(self.frames)} listed frames"
        if self.per_second is not None:
            return f"{self.per_second:g} frames/s"
        n = self.every_n or 1
        return "every frame" if n == 1 else f"every {n}th frame"


EVERY_FRAME = Sampling()


@frozen
class VideoInfo:
    """What a clip's header says (no frame decoded)."""

    frame_rate: float
    frame_count: int | None
    duration: float | None
    width: int
    height: int
    codec: str


@frozen
class VideoFrame:
    """One decoded frame: number (from 0, presentation order), time in seconds, RGB image."""

    index: int
    time: float
    image: Image.Image = field(eq=False, repr=False)


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise CamtrapError(INSTALL_HINT) from None
    return av


def _open(path: Path) -> Any:
    """The opened container, or ``VideoError`` saying why not."""
    av = _av()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise VideoError(path, "file not found", "nonexistent") from None
    except OSError as exc:
        raise VideoError(path, f"cannot read: {exc.strerror or exc}") from None
    if path.is_dir():
        raise VideoError(path, "is a folder, not a video file")
    if size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoError(
            path, f"not a video FFmpeg can read (truncated, or not a video at all): {_why(exc)}"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoError(path, f"cannot open: {_why(exc)}") from None


def _stream(container: Any, path: Path) -> Any:
    streams = container.streams.video
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["no"]
        raise VideoError(path, f"no video stream ({', '.join(kinds)} streams only)")
    stream = streams[0]
    if stream.codec_context is None:
        raise VideoError(path, "unknown video codec: this FFmpeg build has no decoder for it")
    return stream


def _rate(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """The clip's frame rate, frame count (header), duration, size and codec."""
    p = Path(path)
    container = _open(p)
    with container:
        stream = _stream(container, p)
        cc = stream.codec_context
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else (container.duration / 1e6 if container.duration else None)
        )
        return VideoInfo(
            frame_rate=_rate(stream),
            frame_count=int(stream.frames) or None,
            duration=duration,
            width=int(cc.width),
            height=int(cc.height),
            codec=str(cc.name),
        )


class _Plan:
    """Decides, from packet timestamps alone, which frames are wanted."""

    def __init__(self, sampling: Sampling) -> None:
        self.sampling = sampling
        self.bucket = -1

    def wanted(self, index: int, time: float) -> bool:
        s = self.sampling
        if s.frames is not None:
            return index in s.frames
        if s.per_second is not None:
            bucket = math.floor(time * s.per_second + 1e-6)
            if bucket > self.bucket:
                self.bucket = bucket
                return True
            return False
        return index % (s.every_n or 1) == 0

    def finished(self, next_index: int) -> bool:
        frames = self.sampling.frames
        return frames is not None and (not frames or next_index > max(frames))


def read_frames(
    path: str | os.PathLike[str], sampling: Sampling = EVERY_FRAME, *, threads: bool = True
) -> Iterator[VideoFrame]:
    """The sampled frames of a clip, in order, decoding only what they need.

    ``threads``: let FFmpeg decode with frame and slice threads. Raises ``VideoError`` for
    a clip that cannot be read, also part-way (frames yielded before stay valid).
    """
    p = Path(path)
    av = _av()
    container = _open(p)
    with container:
        stream = _stream(container, p)
        if threads:
            stream.thread_type = "AUTO"
        decoder = _GopDecoder(stream, _Plan(sampling))
        seen = 0
        try:
            gop: list[Any] = []
            for packet in container.demux(stream):
                if packet.size == 0 or _pts(packet) is None:
                    continue
                if packet.is_keyframe and gop:
                    yield from decoder.run(gop)
                    seen += len(gop)
                    gop = []
                    if decoder.plan.finished(seen):
                        return
                gop.append(packet)
            if gop:
                yield from decoder.run(gop)
                seen += len(gop)
        except av.error.FFmpegError as exc:
            raise VideoError(
                p, f"corrupt or truncated after frame {seen}: {_why(exc)}", "truncated"
            ) from None
        expected = int(stream.frames or 0)
        if seen == 0:
            raise VideoError(p, "no frames in the video stream")
        if expected and seen < expected:
            raise VideoError(
                p, f"truncated: {seen} of the {expected} frames its header lists", "truncated"
            )


def _pts(packet: Any) -> int | None:
    return packet.pts if packet.pts is not None else packet.dts


class _GopDecoder:
    """Decodes one group of pictures at a time, only as far as its wanted frames need."""

    def __init__(self, stream: Any, plan: _Plan) -> None:
        self.stream = stream
        self.cc = stream.codec_context
        self.plan = plan
        self.base = 0  # frames in the groups before this one
        self.time_base: Fraction = stream.time_base or Fraction(1, 1)
        self.start: int | None = stream.start_time

    def run(self, gop: Sequence[Any]) -> Iterator[VideoFrame]:
        pts = [cast(int, _pts(p)) for p in gop]  # read_frames passes only timed packets
        if self.start is None:
            self.start = min(pts)
        order = sorted(range(len(gop)), key=lambda j: pts[j])  # presentation order
        index_of: dict[int, tuple[int, float]] = {}
        wanted: set[int] = set()  # packet positions (decode order) of wanted frames
        for rank, j in enumerate(order):
            index = self.base + rank
            time = float((pts[j] - self.start) * self.time_base)
            index_of[pts[j]] = (index, time)
            if self.plan.wanted(index, time):
                wanted.add(j)
        self.base += len(gop)
        if not wanted:
            return
        keep = {pts[j] for j in wanted}
        cc = self.cc
        try:
            for j in range(max(wanted) + 1):
                cc.skip_frame = "DEFAULT" if j in wanted else "NONREF"
                yield from self._emit(cc.decode(gop[j]), keep, index_of)
            cc.skip_frame = "DEFAULT"
            yield from self._emit(cc.decode(None), keep, index_of)
        finally:
            cc.skip_frame = "DEFAULT"
            cc.flush_buffers()

    @staticmethod
    def _emit(
        frames: Sequence[Any], keep: set[int], index_of: dict[int, tuple[int, float]]
    ) -> Iterator[VideoFrame]:
        for frame in frames:
            if frame.pts in keep:
                index, time = index_of[frame.pts]
                yield VideoFrame(index, time, frame.to_image())


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"^\[Errno -?\d+\]\s*", "", str(text)).strip() or type(exc).__name__
