"""Pieces the demo source's photos and clips share: location names, seeds, an animal's
walk across the view, and MegaDetector-style detection records."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ct_io.sources.demo_paint import Placement, Species, visible_box


class FrameSize(Protocol):
    """What :func:`walk` reads of the demo's options."""

    width: int
    height: int


def location_name(index: int) -> str:
    """``loc_01``, ``loc_02``... (strings, as every location is)."""
    return f"loc_{index + 1:02d}"


def hash_seed(*parts: int) -> int:
    """A stable seed from integers (Python's ``hash`` is salted per process)."""
    return int(np.random.default_rng(list(parts)).integers(2**31))


def walk(
    species: Species,
    n_frames: int,
    horizon: float,
    o: FrameSize,
    rng: np.random.Generator,
    *,
    coat_seed: int,
) -> list[Placement]:
    """An animal crossing the view: its box in each frame, mostly (not always) in frame."""
    width, height = o.width, o.height
    for _ in range(30):
        feet = rng.uniform(horizon + 0.12, 1.08)  # where it stands; nearer is bigger
        depth = 0.55 + 0.65 * (feet - horizon) / (1 - horizon)
        h = max(12, int(rng.uniform(*species.height_range) * depth * height))
        w = max(12, int(h * species.aspect))
        vx = rng.uniform(0.02, 0.07) * width * rng.choice([-1, 1])
        vy = rng.uniform(-0.01, 0.01) * height
        x0 = rng.uniform(-0.4 * w, width - 0.6 * w)
        y0 = feet * height - h
        path = [
            Placement(species, int(x0 + f * vx), int(y0 + f * vy), w, h, bool(vx < 0), coat_seed)
            for f in range(n_frames)
        ]
        if all(_visible_fraction(p, width, height) >= 0.4 for p in path):
            return path
    return [
        Placement(species, (width - w) // 2, (height - h) // 2, w, h, False, coat_seed)
        for _ in range(n_frames)
    ]


def _visible_fraction(p: Placement, width: int, height: int) -> float:
    box = visible_box(p, width, height)
    return 0.0 if box is None else box[2] * box[3] / (p.width * p.height)


def _jitter(box: tuple[float, float, float, float], rng: np.random.Generator) -> list[float]:
    """Move each edge by a few percent of the box size; stay inside the image."""
    x, y, w, h = box
    dx0, dy0, dx1, dy1 = rng.normal(0, 0.04, size=4) * (w, h, w, h)
    x0, y0 = min(max(x + dx0, 0.0), 1.0), min(max(y + dy0, 0.0), 1.0)
    x1, y1 = min(max(x + w + dx1, x0 + 1e-3), 1.0), min(max(y + h + dy1, y0 + 1e-3), 1.0)
    return [round(x0, 4), round(y0, 4), round(x1 - x0, 4), round(y1 - y0, 4)]


def _detection(conf: float, bbox: list[float]) -> dict[str, Any]:
    return {"category": "1", "conf": round(float(min(max(conf, 0.005), 0.999)), 3), "bbox": bbox}
