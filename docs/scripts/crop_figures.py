"""Draw the pictures of docs/crop.md from real photos and real MegaDetector v5a boxes.

Run from the repository root:  ``uv run python docs/scripts/crop_figures.py``

- ``docs/img/crop-strategies.png``: the four strategies on an animal whose box touches
  the left edge of a Snapshot Kruger photo (plus one PNG per strategy).
- ``docs/img/crop-md-square-bug.png``: a box touching the right edge of a Snapshot
  Kgalagadi photo, cropped by ``square`` and by MegaDetector's ``--square-crops``.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ct_crop.geometry import Strategy, crop_region, normalized_to_pixels
from ct_crop.images import load_image
from ct_crop.render import render_crop

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "md-test-images"
OUT = ROOT / "docs" / "img"
PHOTO = "snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG"
BOX_INDEX = 0
EDGE_PHOTO = "snapshot_kgalagadi_KGA_S1_B06_B06_R1_KGA_S1_B06_R1_IMAG2032.JPG"
EDGE_BOX_INDEX = 1
PANEL = 300
FONT = ImageFont.load_default(size=22)
COLOURS = {
    Strategy.TIGHT: "#ffd400",
    Strategy.SQUARE: "#00d0ff",
    Strategy.PAD: "#ff5fd2",
    Strategy.CENTER: "#7dff5f",
}


def md_square_crop(image: Image.Image, bbox: list[float]) -> Image.Image:
    """What MegaDetector's crop_detections --square-crops makes (its arithmetic, for comparison)."""
    w_img, h_img = image.size
    x, y = int(bbox[0] * w_img), int(bbox[1] * h_img)
    bw, bh = int(bbox[2] * w_img), int(bbox[3] * h_img)
    side = max(bw, bh)
    x = max(0, min(x - (side - bw) // 2, w_img - bw))  # clamps with the box width, not the side
    y = max(0, min(y - (side - bh) // 2, h_img - bh))
    return image.crop(
        (x, y, x + min(w_img, side), y + min(h_img, side))
    )  # reads past the edge: black


def labelled(img: Image.Image, title: str, colour: str) -> Image.Image:
    scale = PANEL / max(img.size)
    small = img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))),
        Image.Resampling.LANCZOS,
    )
    panel = Image.new("RGB", (PANEL + 20, PANEL + 60), "white")
    panel.paste(small, (10 + (PANEL - small.width) // 2, 50 + (PANEL - small.height) // 2))
    draw = ImageDraw.Draw(panel)
    draw.rectangle((0, 0, panel.width - 1, 40), fill=colour)
    draw.text((10, 8), title, fill="black", font=FONT)
    return panel


def load(photo: str, index: int) -> tuple[Image.Image, list[float]]:
    md = json.loads((DATA / "md_output_v5a.json").read_text())
    entry = next(im for im in md["images"] if im["file"] == photo)
    return load_image(DATA / "images" / photo), entry["detections"][index]["bbox"]


def sheet(
    image: Image.Image,
    box: tuple[float, float, float, float],
    panels: list[Image.Image],
    outlines: list[Strategy],
) -> Image.Image:
    """The photo with the strategies' source regions outlined, then the panels."""
    overview = image.copy()
    draw = ImageDraw.Draw(overview)
    width = max(4, image.width // 300)
    for strategy in outlines:
        s = crop_region(box, image.size, strategy).source
        draw.rectangle(
            (s.left, s.top, s.right - 1, s.bottom - 1), outline=COLOURS[strategy], width=width
        )
    overview = overview.resize(
        (overview.width * (PANEL + 60) // overview.height, PANEL + 60), Image.Resampling.LANCZOS
    )
    out = Image.new(
        "RGB", (overview.width + sum(p.width for p in panels) + 10, PANEL + 60), "white"
    )
    out.paste(overview, (0, 0))
    x = overview.width + 10
    for panel in panels:
        out.paste(panel, (x, 0))
        x += panel.width
    return out


def main() -> None:
    image, bbox = load(PHOTO, BOX_INDEX)
    box = normalized_to_pixels(bbox, image.size)
    panels = []
    for strategy in (Strategy.TIGHT, Strategy.SQUARE, Strategy.PAD, Strategy.CENTER):
        crop = render_crop(image, crop_region(box, image.size, strategy), size=PANEL)
        crop.save(OUT / f"crop-{strategy.value}.png", optimize=True)
        full = crop_region(box, image.size, strategy).canvas
        panels.append(labelled(crop, f"{strategy.value} ({full[0]}x{full[1]})", COLOURS[strategy]))
    sheet(image, box, panels, [Strategy.SQUARE, Strategy.CENTER, Strategy.TIGHT]).save(
        OUT / "crop-strategies.png", optimize=True
    )

    image, bbox = load(EDGE_PHOTO, EDGE_BOX_INDEX)
    box = normalized_to_pixels(bbox, image.size)
    ours = render_crop(image, crop_region(box, image.size, Strategy.SQUARE))
    panels = [
        labelled(ours, "ct-crop square", COLOURS[Strategy.SQUARE]),
        labelled(md_square_crop(image, bbox), "MegaDetector --square-crops", "#bbbbbb"),
    ]
    sheet(image, box, panels, [Strategy.SQUARE, Strategy.TIGHT]).save(
        OUT / "crop-md-square-bug.png", optimize=True
    )
    print(f"wrote {OUT}/crop-strategies.png, crop-md-square-bug.png and one PNG per strategy")


if __name__ == "__main__":
    main()
