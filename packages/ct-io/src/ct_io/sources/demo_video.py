"""Short synthetic clips for the ``demo`` source (``-o num_clips=N``).

Each clip is an animal of one species walking slowly across a location's scene (or an
empty scene), ``clip_frames`` frames at ``clip_fps``, encoded as H.264 MP4 with PyAV
(one keyframe a second, B-frames: what camera traps write) beside the photos, e.g.
``images/loc_02/clip_0003.mp4``. The CCT gets one image per clip (its species, no box:
a box belongs to a frame) with the clip as its sequence; the MD JSON gets one
MegaDetector per-video entry per clip (``frame_rate``, ``frames_processed``, detections
with ``frame_number``) on every ``clip_frame_sample``-th frame, the animal's true box
jittered as for the photos. Needs ``ct-io[video]``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from attrs import frozen

from ct_io.sources.demo_paint import SPECIES, Placement, compose, visible_box
from ct_io.sources.demo_tracks import _detection, _jitter, hash_seed, location_name, walk

if TYPE_CHECKING:
    from ct_io.sources.demo_paint import Background


class DemoOptions(Protocol):
    """What the clips read of the demo source's options (``ct_io.sources.demo.DemoOptions``)."""

    seed: int
    num_locations: int
    num_species: int
    width: int
    height: int
    night_fraction: float
    blank_fraction: float
    num_clips: int
    clip_frames: int
    clip_fps: int
    clip_frame_sample: int


_START = dt.datetime(2023, 6, 1)


@frozen
class Clip:
    """One planned clip: where, when, and the animal's box in every frame."""

    index: int
    file_name: str
    location: int
    species: str | None  #: None for an empty clip
    datetime: str
    night: bool
    light: float
    tracks: tuple[tuple[Placement, ...], ...]  #: per frame, the animals in it

    @property
    def seq_id(self) -> str:
        return f"clip_{self.index:04d}"


def clip_size(o: DemoOptions) -> tuple[int, int]:
    """Width and height of the clips (the photos' size rounded down to even, for H.264)."""
    return o.width - o.width % 2, o.height - o.height % 2


def plan_clips(o: DemoOptions, horizons: list[float], mix: np.ndarray) -> list[Clip]:
    """Every clip: location (round robin), species (the location's mix), track, time."""
    clips = []
    for c in range(o.num_clips):
        rng = np.random.default_rng([o.seed, 6, c])
        loc = c % o.num_locations
        night = bool(rng.random() < o.night_fraction)
        hour = int(rng.choice((21, 22, 23, 1, 2))) if night else int(rng.integers(7, 18))
        start = _START + dt.timedelta(days=c, hours=hour, minutes=int(rng.integers(60)))
        light = 1.0 if night else float(0.8 + 0.2 * math.sin(math.pi * (hour - 6) / 12))
        tracks: list[tuple[Placement, ...]] = [() for _ in range(o.clip_frames)]
        species = None
        if rng.random() >= o.blank_fraction:
            kind = SPECIES[int(rng.choice(o.num_species, p=mix[loc]))]
            species = kind.name
            # two steps of the photo sequences' walk, slowed to span the whole clip
            a, b = walk(kind, 2, horizons[loc], o, rng, coat_seed=hash_seed(o.seed, 7, c))
            step = 2.5 / max(o.clip_frames - 1, 1)
            tracks = [
                (
                    Placement(
                        kind,
                        int(a.x + (b.x - a.x) * step * f),
                        int(a.y + (b.y - a.y) * step * f),
                        a.width,
                        a.height,
                        a.facing_left,
                        a.coat_seed,
                    ),
                )
                for f in range(o.clip_frames)
            ]
        clips.append(
            Clip(
                index=c,
                file_name=f"{location_name(loc)}/clip_{c:04d}.mp4",
                location=loc,
                species=species,
                datetime=start.strftime("%Y-%m-%d %H:%M:%S"),
                night=night,
                light=light,
                tracks=tuple(tracks),
            )
        )
    return clips


def encode_clip(
    path: Path, clip: Clip, backgrounds: list[Background], o: DemoOptions, vignette: np.ndarray
) -> None:
    """Render and encode one clip (H.264, yuv420p, one keyframe a second; deterministic)."""
    import av

    from ct_io.atomic import atomic_open

    width, height = clip_size(o)
    fps = o.clip_fps
    with atomic_open(path, "wb") as fh, av.open(fh, "w", format="mp4") as out:
        stream = out.add_stream(
            "libx264",
            rate=fps,
            options={"preset": "veryfast", "crf": "20", "g": str(fps), "threads": "1"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for f, animals in enumerate(clip.tracks):
            image = compose(
                backgrounds[clip.location],
                animals,
                light=clip.light,
                night=clip.night,
                rng=np.random.default_rng([o.seed, 8, clip.index, f]),
                vignette=vignette,
            ).crop((0, 0, width, height))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def sampled_frames(o: DemoOptions) -> list[int]:
    """The frames MegaDetector-style detection "ran" on."""
    return list(range(0, o.clip_frames, o.clip_frame_sample))


def clip_md_entry(clip: Clip, o: DemoOptions) -> dict[str, Any]:
    """The clip's MegaDetector per-video entry: the true boxes of sampled frames, jittered."""
    width, height = clip_size(o)
    rng = np.random.default_rng([o.seed, 9, clip.index])
    dets = []
    for f in sampled_frames(o):
        for p in clip.tracks[f]:
            box = visible_box(p, width, height)
            if box is None or rng.random() < 0.05:
                continue
            x, y, w, h = box
            conf = rng.beta(9, 1.6) * (0.8 if clip.night else 1.0)
            det = _detection(conf, _jitter((x / width, y / height, w / width, h / height), rng))
            dets.append({**det, "frame_number": f})
    return {
        "file": clip.file_name,
        "frame_rate": float(o.clip_fps),
        "frames_processed": sampled_frames(o),
        "detections": dets,
    }


def clip_cct_records(
    clip: Clip, o: DemoOptions, cat_id: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The clip's CCT image (the clip is its own sequence) and its one annotation."""
    width, height = clip_size(o)
    image_id = clip.file_name.removesuffix(".mp4")
    image = {
        "id": image_id,
        "file_name": clip.file_name,
        "width": width,
        "height": height,
        "location": location_name(clip.location),
        "datetime": clip.datetime,
        "seq_id": clip.seq_id,
        "seq_num_frames": 1,
        "frame_num": 0,
    }
    category = cat_id[clip.species] if clip.species is not None else 0
    return image, {"id": f"{image_id}_a0", "image_id": image_id, "category_id": category}
