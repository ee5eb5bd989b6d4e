"""Painting for the synthetic ``demo`` dataset: location backgrounds, species, scenes.

Everything here is a pure function of its arguments and a ``numpy`` random generator, so
a seed fixes every pixel. Species are told apart by shape and texture as well as colour,
so they stay recognisable in grayscale night frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from attrs import frozen
from PIL import Image, ImageDraw, ImageFilter

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in a unit square
RGB = tuple[int, int, int]


# ---------------------------------------------------------------- species


@frozen
class Part:
    """One primitive of a species' silhouette, in unit coordinates of its box."""

    kind: str  # "ellipse" | "rect" | "polygon"
    points: tuple[float, ...]


@frozen
class Species:
    """How one synthetic species looks: silhouette, colour, texture and size."""

    name: str
    colour: RGB
    texture: str
    aspect: float  # box width / box height
    height_range: tuple[float, float]  # box height as a fraction of the image height
    parts: tuple[Part, ...]


def _e(*p: float) -> Part:
    return Part("ellipse", p)


def _r(*p: float) -> Part:
    return Part("rect", p)


def _p(*p: float) -> Part:
    return Part("polygon", p)


# fmt: off
#: The species pool (the first ``num_species`` are used). Boar/badger and fox/hare share
#: rough shapes, so at night (no colour) texture is what separates them.
SPECIES: tuple[Species, ...] = (
    Species("deer", (168, 118, 72), "spots", 1.05, (0.30, 0.55),
            (_e(0.08, 0.32, 0.78, 0.68), _p(0.62, 0.40, 0.74, 0.08, 0.84, 0.12, 0.76, 0.45),
             _e(0.72, 0.02, 0.98, 0.24), _r(0.16, 0.55, 0.23, 1.0), _r(0.62, 0.55, 0.69, 1.0))),
    Species("fox", (212, 98, 34), "belly", 1.7, (0.14, 0.30),
            (_e(0.18, 0.30, 0.76, 0.78), _p(0.70, 0.28, 1.0, 0.52, 0.70, 0.66), _p(0.72, 0.30, 0.78, 0.05, 0.85, 0.34),
             _e(0.0, 0.42, 0.30, 0.64), _r(0.26, 0.66, 0.31, 1.0), _r(0.62, 0.66, 0.67, 1.0))),
    Species("badger", (124, 124, 128), "stripe", 1.9, (0.11, 0.24),
            (_e(0.0, 0.22, 0.92, 0.92), _p(0.80, 0.35, 1.0, 0.62, 0.80, 0.80), _r(0.12, 0.75, 0.20, 1.0), _r(0.70, 0.75, 0.78, 1.0))),
    Species("boar", (78, 62, 52), "bristles", 1.5, (0.20, 0.40),
            (_e(0.04, 0.08, 0.88, 0.82), _r(0.84, 0.40, 1.0, 0.62), _r(0.18, 0.70, 0.27, 1.0), _r(0.66, 0.70, 0.75, 1.0))),
    Species("hare", (160, 138, 108), "speckle", 0.85, (0.09, 0.20),
            (_e(0.05, 0.45, 0.78, 1.0), _e(0.52, 0.24, 0.92, 0.60), _e(0.60, 0.0, 0.70, 0.38), _e(0.74, 0.0, 0.84, 0.38))),
    Species("raccoon", (112, 108, 104), "rings", 1.45, (0.12, 0.26),
            (_e(0.22, 0.18, 0.86, 0.86), _e(0.70, 0.16, 1.0, 0.52), _e(0.0, 0.40, 0.34, 0.62),
             _r(0.32, 0.74, 0.39, 1.0), _r(0.66, 0.74, 0.73, 1.0))),
)
# fmt: on


def silhouette(species: Species, width: int, height: int, *, facing_left: bool) -> Image.Image:
    """The species' soft-edged mask (mode ``L``) at ``width`` x ``height`` pixels."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for part in species.parts:
        pts = [v * (width if k % 2 == 0 else height) for k, v in enumerate(part.points)]
        if part.kind == "ellipse":
            draw.ellipse(pts, fill=255)
        elif part.kind == "rect":
            draw.rectangle(pts, fill=255)
        else:
            draw.polygon(pts, fill=255)
    if facing_left:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return mask.filter(ImageFilter.GaussianBlur(max(0.6, min(width, height) / 80)))


def coat(species: Species, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The species' fur as an ``(height, width, 3)`` float array (its texture on its colour)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / max(width - 1, 1), yy / max(height - 1, 1)
    base = np.asarray(species.colour, dtype=np.float32)
    shade = np.ones((height, width), np.float32) * (1.05 - 0.25 * v)  # lit from above
    add = np.zeros((height, width), np.float32)
    if species.texture == "spots":  # big pale spots on the flank
        for cx, cy in rng.uniform((0.15, 0.35), (0.7, 0.6), size=(9, 2)):
            add += 110 * (((u - cx) * width) ** 2 + ((v - cy) * height) ** 2 < (0.04 * width) ** 2)
    elif species.texture == "belly":  # white belly and tail tip
        add += 110 * (v > 0.62) + 120 * (u < 0.08)
    elif species.texture == "stripe":  # black body, two broad white bands
        add += 150 * ((np.abs(v - 0.38) < 0.08) | (np.abs(v - 0.62) < 0.06)) - 70
    elif species.texture == "bristles":  # very dark, coarse vertical bristles
        add += (
            rng.normal(0, 30, size=(height, width)).astype(np.float32) * (np.sin(u * 60) > 0) - 20
        )
    elif species.texture == "speckle":  # pale, finely speckled
        add += rng.normal(0, 22, size=(height, width)).astype(np.float32) + 25
    elif species.texture == "rings":  # bold dark rings
        add += -90 * (np.sin(u * 2 * np.pi * 6) > 0.2) + 40
    return np.clip(base[None, None, :] * shade[..., None] + add[..., None], 0, 255)


# ---------------------------------------------------------------- backgrounds

#: Biomes a location's palette is drawn from: sky, far ground, near ground, trunks, rocks.
BIOMES: tuple[tuple[RGB, RGB, RGB, RGB, RGB], ...] = (
    ((150, 180, 205), (70, 105, 55), (45, 75, 35), (70, 50, 35), (120, 118, 110)),  # forest
    ((185, 200, 215), (190, 170, 110), (160, 135, 85), (95, 80, 60), (150, 130, 110)),  # savanna
    ((205, 215, 225), (225, 228, 232), (200, 205, 212), (60, 50, 45), (110, 110, 115)),  # snow
    ((200, 190, 170), (200, 160, 110), (175, 130, 85), (120, 90, 60), (170, 120, 90)),  # desert
    ((140, 170, 190), (95, 130, 80), (110, 100, 70), (50, 45, 40), (90, 95, 90)),  # wetland
    ((170, 190, 210), (130, 150, 90), (100, 120, 60), (85, 65, 45), (135, 135, 125)),  # grassland
)


@frozen
class Background:
    """A location's painted scene and the spots a detector may mistake for animals."""

    pixels: np.ndarray  # (H, W, 3) float32
    horizon: float  # y of the horizon as a fraction of the height
    distractors: tuple[tuple[float, float, float, float], ...]  # normalized x, y, w, h


def smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid resized smoothly."""
    h, w = shape
    grid = rng.uniform(-1, 1, size=(cells, max(2, cells * w // h))).astype(np.float32)
    return np.asarray(
        Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32
    )


def paint_background(
    index: int, horizon: float, width: int, height: int, rng: np.random.Generator
) -> Background:
    """One location's scene: sky and ground from a biome, with trees and rocks of its own."""
    sky, far, near, trunk, rock = (np.asarray(c, np.float32) for c in BIOMES[index % len(BIOMES)])
    tint = rng.uniform(-18, 18, size=3).astype(np.float32)
    hy = int(horizon * height)
    v = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    ground_t = np.clip((v - horizon) / (1 - horizon), 0, 1)
    img = np.where(
        v < horizon, sky[None, None] * (0.85 + 0.15 * v / horizon), far + (near - far) * ground_t
    )
    img = np.broadcast_to(img, (height, width, 3)).copy() + tint
    patches = smooth_noise((height, width), 6, rng)[..., None]
    grass = rng.normal(0, 9, size=(height, width, 1)).astype(np.float32)
    ground = (np.arange(height) >= hy)[:, None, None]
    img += ground * (22 * patches + grass)
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    distractors: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(2, 6))):  # trees: trunks reaching above the frame
        x, w = rng.uniform(0, 1) * width, rng.uniform(0.02, 0.07) * width
        base = hy + rng.uniform(0.05, 0.5) * (height - hy)
        draw.rectangle(
            (x, 0, x + w, base), fill=tuple(int(c) for c in trunk + rng.uniform(-15, 15))
        )
        distractors.append((x / width, max(0.0, base / height - 0.15), w / width, 0.15))
    for _ in range(int(rng.integers(2, 5))):  # rocks and stumps
        cx, cy = rng.uniform(0.05, 0.95) * width, rng.uniform(hy + 10, height)
        rw, rh = rng.uniform(0.05, 0.14) * width, rng.uniform(0.03, 0.08) * height
        draw.ellipse(
            (cx - rw, cy - rh, cx + rw, cy + rh),
            fill=tuple(int(c) for c in rock + rng.uniform(-25, 25)),
        )
        distractors.append(
            (
                max(0.0, (cx - rw) / width),
                max(0.0, (cy - rh) / height),
                2 * rw / width,
                2 * rh / height,
            )
        )
    pixels = np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32)
    return Background(pixels, horizon, tuple(_clip_unit(d) for d in distractors))


def _clip_unit(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    x, y = min(max(x, 0.0), 0.99), min(max(y, 0.0), 0.99)
    return x, y, min(w, 1 - x), min(h, 1 - y)


# ---------------------------------------------------------------- scenes


@frozen
class Placement:
    """One animal in one frame: its species, box (pixels, may leave the frame), facing."""

    species: Species
    x: int
    y: int
    width: int
    height: int
    facing_left: bool
    coat_seed: int  # the same animal keeps its coat from frame to frame


def visible_box(p: Placement, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The part of the animal's box inside the image as ``(x, y, w, h)``, None if hidden."""
    x0, y0 = max(p.x, 0), max(p.y, 0)
    x1, y1 = min(p.x + p.width, width), min(p.y + p.height, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return x0, y0, x1 - x0, y1 - y0


def compose(
    background: Background,
    animals: Sequence[Placement],
    *,
    light: float,
    night: bool,
    rng: np.random.Generator,
    vignette: np.ndarray,
) -> Image.Image:
    """One frame: the background lit for its hour, the animals, then camera effects.

    Night frames are infrared-style grayscale: a bright centre falling off to the edges
    and sensor noise. They are saved as RGB with equal channels, as camera traps do.
    """
    canvas = Image.fromarray(np.clip(background.pixels * light, 0, 255).astype(np.uint8))
    for p in sorted(animals, key=lambda a: a.y + a.height):  # farther animals first
        mask = silhouette(p.species, p.width, p.height, facing_left=p.facing_left)
        fur = np.clip(
            coat(p.species, p.width, p.height, np.random.default_rng(p.coat_seed)) * light, 0, 255
        )
        if p.facing_left:
            fur = fur[:, ::-1]
        canvas.paste(Image.fromarray(fur.astype(np.uint8)), (p.x, p.y), mask)
    if not night:
        return canvas
    gray = np.asarray(canvas.convert("L"), dtype=np.float32)
    gray = gray * vignette + rng.normal(0, 7, size=gray.shape).astype(np.float32)
    return Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).convert("RGB")


def night_vignette(width: int, height: int) -> np.ndarray:
    """Infrared flash falloff: 1.25 at the centre to about 0.35 in the corners."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    return (1.25 * np.exp(-0.65 * r2)).astype(np.float32)
