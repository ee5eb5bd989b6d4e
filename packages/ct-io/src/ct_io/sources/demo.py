"""The built-in ``demo`` data source: a small synthetic camera-trap dataset, no download.

``ct-io fetch demo OUT`` writes, in a few seconds::

    OUT/demo/images/loc_01/seq_0000_0.jpg ...   # ~300 JPEGs, 640x480
    OUT/demo/demo_cct.json                      # COCO Camera Traps, GT boxes in pixels
    OUT/demo/demo_md.json                       # MegaDetector-style output (format 1.5)

With ``-o num_clips=N`` it also writes N short H.264 clips with MegaDetector per-video
detections (:mod:`ct_io.sources.demo_video`; needs ``ct-io[video]``).

What makes it a fair stand-in for a real camera-trap dataset:

- several locations, each with its own scene (biome, horizon, trees, rocks), so a split
  by image leaks location;
- 4–6 species told apart by silhouette, texture and colour, at varied sizes, facing
  either way, sometimes partly outside the frame; two pairs share rough shapes;
- each location has a dominant species, so a model may "learn the background": a random
  split scores visibly higher than a location split;
- sequences of 3 frames with the same animal moving a little (``seq_id``,
  ``seq_num_frames``, ``frame_num``, ``datetime``), blank sequences (category 0
  ``empty``), infrared night frames (grayscale);
- an MD JSON whose boxes are the GT boxes jittered, with realistic confidences, plus
  low-confidence false positives on rocks and trunks.

The same options and seed give byte-identical files; every file is written atomically
and a rerun with the same options returns at once.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import asdict, define, field, frozen, validators

from ct_io.atomic import write_bytes_atomic
from ct_io.cct import CocoCameraTraps, from_records, write_cct
from ct_io.hookspecs import FetchedDataset
from ct_io.jsonio import read_json, write_json
from ct_io.md import parse_md, write_md
from ct_io.paths import safe_join
from ct_io.sources.demo_paint import (
    SPECIES,
    Background,
    Placement,
    compose,
    night_vignette,
    paint_background,
    visible_box,
)
from ct_io.sources.demo_tracks import (
    _detection,
    _jitter,
    hash_seed,
    location_name,
    walk,
)
from ct_io.sources.demo_video import (
    Clip,
    clip_cct_records,
    clip_md_entry,
    encode_clip,
    plan_clips,
)

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

_START = dt.datetime(2023, 4, 1)
_NIGHT_HOURS = (20, 21, 22, 23, 0, 1, 2, 3, 4)
_STAMP = ".demo-options.json"


def _name_ok(_: Any, __: Any, value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(f"name {value!r} must be a plain folder name (letters, digits, _ . -)")


@define(kw_only=True)
class DemoOptions:
    """Options of the ``demo`` source (``ct-io fetch demo OUT -o num_images=600``)."""

    name: str = field(default="demo", validator=_name_ok)
    seed: int = 0
    num_images: int = field(default=300, validator=validators.ge(1))
    num_locations: int = field(default=6, validator=[validators.ge(1), validators.le(50)])
    num_species: int = field(default=5, validator=[validators.ge(4), validators.le(len(SPECIES))])
    width: int = field(default=640, validator=[validators.ge(64), validators.le(4096)])
    height: int = field(default=480, validator=[validators.ge(64), validators.le(4096)])
    frames_per_sequence: int = field(default=3, validator=[validators.ge(1), validators.le(20)])
    night_fraction: float = field(default=0.3, validator=[validators.ge(0.0), validators.le(1.0)])
    blank_fraction: float = field(default=0.15, validator=[validators.ge(0.0), validators.le(1.0)])
    #: Share of a location's animal sequences that show its dominant species.
    dominant_share: float = field(default=0.5, validator=[validators.ge(0.0), validators.le(1.0)])
    #: Probability that an image gets a low-confidence false detection.
    false_positive_rate: float = field(
        default=0.25, validator=[validators.ge(0.0), validators.le(1.0)]
    )
    jpeg_quality: int = field(default=88, validator=[validators.ge(30), validators.le(100)])
    #: Short synthetic video clips (H.264 MP4, needs ``ct-io[video]``) beside the photos.
    num_clips: int = field(default=0, validator=[validators.ge(0), validators.le(1000)])
    clip_frames: int = field(default=30, validator=[validators.ge(2), validators.le(600)])
    clip_fps: int = field(default=10, validator=[validators.ge(1), validators.le(60)])
    #: The clips' MD JSON has detections on every N-th frame (MegaDetector's frame_sample).
    clip_frame_sample: int = field(default=5, validator=[validators.ge(1), validators.le(600)])

    def __attrs_post_init__(self) -> None:
        if self.num_images < self.num_locations:
            raise ValueError(
                f"num_images ({self.num_images}) must be at least num_locations ({self.num_locations})"
            )


@frozen
class Frame:
    """One image of the dataset, fully planned before any pixel is painted."""

    index: int
    image_id: str
    file_name: str
    location: int
    seq_id: str
    frame_num: int
    seq_num_frames: int
    datetime: str
    night: bool
    light: float
    animals: tuple[Placement, ...]


class DemoSource:
    """Synthesizes the demo dataset into ``out_dir/<name>/``."""

    def __init__(self, options: DemoOptions | None = None) -> None:
        self.options = options or DemoOptions()

    def fetch(self, out_dir: Path, progress: Progress | None = None) -> FetchedDataset:
        """Write images, CCT and MD JSON (skipped when an identical run is already there)."""
        o = self.options
        root = Path(out_dir) / o.name
        result = FetchedDataset(
            name=o.name,
            cct_path=root / f"{o.name}_cct.json",
            images_dir=root / "images",
            detections_path=root / f"{o.name}_md.json",
        )
        frames = plan_frames(o)
        clips = plan_clips(o, location_horizons(o), location_mix(o))
        if _up_to_date(result, o, [f.file_name for f in frames] + [c.file_name for c in clips]):
            log.info("demo dataset already in %s (same options); nothing to do", root)
            return result
        backgrounds = [
            paint_background(i, horizon, o.width, o.height, np.random.default_rng([o.seed, 1, i]))
            for i, horizon in enumerate(location_horizons(o))
        ]
        task = (
            progress.add_task("painting demo images", total=len(frames))
            if progress is not None
            else None
        )
        for frame in frames:
            data = render_jpeg(frame, backgrounds, o)
            write_bytes_atomic(safe_join(result.images_dir, frame.file_name), data)
            if progress is not None and task is not None:
                progress.advance(task)
        for clip in clips:
            encode_clip(
                safe_join(result.images_dir, clip.file_name),
                clip,
                backgrounds,
                o,
                _vignette(o.width, o.height),
            )
        assert result.detections_path is not None
        md = md_dict(frames, backgrounds, o)
        md["images"] += [clip_md_entry(clip, o) for clip in clips]
        write_md(parse_md(md, source="demo"), result.detections_path)
        write_cct(cct_dataset(frames, o, clips), result.cct_path, indent=1)
        write_json(root / _STAMP, _options_dict(o))
        log.info(
            "wrote %d demo images and %d clips to %s", len(frames), len(clips), result.images_dir
        )
        return result


# ---------------------------------------------------------------- planning


def location_horizons(o: DemoOptions) -> list[float]:
    """Where each location's horizon lies (fraction of the height from the top)."""
    return [
        float(h)
        for h in np.random.default_rng([o.seed, 5]).uniform(0.22, 0.45, size=o.num_locations)
    ]


def location_mix(o: DemoOptions) -> np.ndarray:
    """``(locations, species)`` probabilities: each location favours one species."""
    mix = np.full((o.num_locations, o.num_species), (1 - o.dominant_share) / o.num_species)
    for loc in range(o.num_locations):
        mix[loc, loc % o.num_species] += o.dominant_share
    return mix / mix.sum(axis=1, keepdims=True)


def sequences_per_location(o: DemoOptions, rng: np.random.Generator) -> list[int]:
    """Uneven location sizes (as in real deployments), at least one sequence each."""
    n_seq = math.ceil(o.num_images / o.frames_per_sequence)
    weights = 0.4 + rng.random(o.num_locations)
    extra = rng.multinomial(max(n_seq - o.num_locations, 0), weights / weights.sum())
    return [int(n) for n in 1 + extra]


def plan_frames(o: DemoOptions) -> list[Frame]:
    """Every image: location, sequence, time, light and animal placements."""
    rng = np.random.default_rng([o.seed, 0])
    mix = location_mix(o)
    horizons = location_horizons(o)
    frames: list[Frame] = []
    seq = 0
    for loc, n_seq in enumerate(sequences_per_location(o, rng)):
        for k in range(n_seq):
            n_frames = min(o.frames_per_sequence, o.num_images - len(frames))
            if n_frames <= 0:
                return frames
            frames.extend(
                plan_sequence(seq, k, loc, n_frames, mix[loc], horizons[loc], len(frames), o)
            )
            seq += 1
    return frames


def plan_sequence(
    seq: int,
    k: int,
    loc: int,
    n_frames: int,
    mix: np.ndarray,
    horizon: float,
    first_index: int,
    o: DemoOptions,
) -> list[Frame]:
    """One sequence: a blank or one or two animals of a species walking across."""
    rng = np.random.default_rng([o.seed, 2, seq])
    night = bool(rng.random() < o.night_fraction)
    hour = int(rng.choice(_NIGHT_HOURS)) if night else int(rng.integers(7, 18))
    start = _START + dt.timedelta(
        days=7 * loc + k, hours=hour, minutes=int(rng.integers(60)), seconds=int(rng.integers(60))
    )
    light = (
        1.0
        if night
        else float(0.75 + 0.3 * math.sin(math.pi * (hour - 6) / 12) + rng.uniform(-0.05, 0.05))
    )
    tracks: list[list[Placement]] = [[] for _ in range(n_frames)]
    if rng.random() >= o.blank_fraction:
        species = SPECIES[int(rng.choice(o.num_species, p=mix))]
        for animal in range(1 if rng.random() < 0.85 else 2):
            path = walk(
                species, n_frames, horizon, o, rng, coat_seed=hash_seed(o.seed, seq, animal)
            )
            for f, placement in enumerate(path):
                tracks[f].append(placement)
    seq_id = f"seq_{seq:04d}"
    frames = []
    for f in range(n_frames):
        file_name = f"{location_name(loc)}/{seq_id}_{f}.jpg"
        frames.append(
            Frame(
                index=first_index + f,
                image_id=file_name.removesuffix(".jpg"),
                file_name=file_name,
                location=loc,
                seq_id=seq_id,
                frame_num=f,
                seq_num_frames=n_frames,
                datetime=(start + dt.timedelta(seconds=f)).strftime("%Y-%m-%d %H:%M:%S"),
                night=night,
                light=light,
                animals=tuple(tracks[f]),
            )
        )
    return frames


# ---------------------------------------------------------------- rendering and records


def render_jpeg(frame: Frame, backgrounds: list[Background], o: DemoOptions) -> bytes:
    """The frame's pixels as JPEG bytes (fixed quality, no metadata: deterministic)."""
    image = compose(
        backgrounds[frame.location],
        frame.animals,
        light=frame.light,
        night=frame.night,
        rng=np.random.default_rng([o.seed, 3, frame.index]),
        vignette=_vignette(o.width, o.height),
    )
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=o.jpeg_quality)
    return buf.getvalue()


_VIGNETTES: dict[tuple[int, int], np.ndarray] = {}


def _vignette(width: int, height: int) -> np.ndarray:
    key = (width, height)
    if key not in _VIGNETTES:
        _VIGNETTES[key] = night_vignette(width, height)
    return _VIGNETTES[key]


def gt_boxes(frame: Frame, o: DemoOptions) -> Iterator[tuple[Placement, tuple[int, int, int, int]]]:
    """Each visible animal with its box clipped to the image (absolute pixels)."""
    for p in frame.animals:
        box = visible_box(p, o.width, o.height)
        if box is not None:
            yield p, box


def cct_dataset(frames: list[Frame], o: DemoOptions, clips: Sequence[Clip] = ()) -> CocoCameraTraps:
    """The COCO Camera Traps dataset: images, GT boxes (blanks as category 0), categories;
    each clip is one image labelled with its species, without a box."""
    cat_id = {s.name: i + 1 for i, s in enumerate(SPECIES[: o.num_species])}
    images, annotations = [], []
    for fr in frames:
        images.append(
            {
                "id": fr.image_id,
                "file_name": fr.file_name,
                "width": o.width,
                "height": o.height,
                "location": location_name(fr.location),
                "datetime": fr.datetime,
                "seq_id": fr.seq_id,
                "seq_num_frames": fr.seq_num_frames,
                "frame_num": fr.frame_num,
            }
        )
        boxes = list(gt_boxes(fr, o))
        for k, (p, box) in enumerate(boxes):
            annotations.append(
                {
                    "id": f"{fr.image_id}_a{k}",
                    "image_id": fr.image_id,
                    "category_id": cat_id[p.species.name],
                    "bbox": list(box),
                }
            )
        if not boxes:
            annotations.append(
                {"id": f"{fr.image_id}_a0", "image_id": fr.image_id, "category_id": 0}
            )
    for clip in clips:
        image, annotation = clip_cct_records(clip, o, cat_id)
        images.append(image)
        annotations.append(annotation)
    categories = [{"id": 0, "name": "empty"}] + [{"id": i, "name": n} for n, i in cat_id.items()]
    info = {
        "version": "1.0",
        "description": f"Synthetic camera-trap dataset from camtrap's demo data source (seed {o.seed})",
        "contributor": "camtrap demo",
        "date_created": "2023-01-01",
    }
    return from_records(images, annotations, categories, info)


def md_dict(frames: list[Frame], backgrounds: list[Background], o: DemoOptions) -> dict[str, Any]:
    """MegaDetector-style output: GT boxes jittered with realistic confidences, plus
    low-confidence false positives on each location's rocks and trunks."""
    images = []
    for fr in frames:
        rng = np.random.default_rng([o.seed, 4, fr.index])
        dets = []
        for p, (x, y, w, h) in gt_boxes(fr, o):
            if rng.random() < 0.03:  # the detector misses a few animals
                continue
            conf = (
                rng.beta(9, 1.6)
                * (0.8 if fr.night else 1.0)
                * (0.8 if h < 0.12 * o.height else 1.0)
            )
            conf *= 0.8 if w * h < 0.6 * p.width * p.height else 1.0
            dets.append(
                _detection(
                    conf, _jitter((x / o.width, y / o.height, w / o.width, h / o.height), rng)
                )
            )
        if rng.random() < o.false_positive_rate:
            spots = backgrounds[fr.location].distractors
            spot = spots[int(rng.integers(len(spots)))]
            dets.append(_detection(rng.uniform(0.01, 0.2), _jitter(spot, rng)))
        images.append({"file": fr.file_name, "detections": dets})
    return {
        "info": {
            "format_version": "1.5",
            "detector": "camtrap-demo-synthetic-detector",
            "detection_completion_time": "2023-01-01 00:00:00",
            "detector_metadata": {
                "typical_detection_threshold": 0.2,
                "conservative_detection_threshold": 0.05,
            },
        },
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": images,
    }


# ---------------------------------------------------------------- files


def _options_dict(o: DemoOptions) -> dict[str, Any]:
    return asdict(o)


def _up_to_date(result: FetchedDataset, o: DemoOptions, files: list[str]) -> bool:
    """True when a previous run with the same options completed (its stamp is written last)."""
    stamp = result.cct_path.parent / _STAMP
    if not (
        stamp.is_file()
        and result.cct_path.is_file()
        and result.detections_path
        and result.detections_path.is_file()
    ):
        return False
    try:
        same = read_json(stamp) == _options_dict(o)
    except Exception:  # a damaged stamp just means "regenerate"
        return False
    return same and all((result.images_dir / f).is_file() for f in files)
