"""Images the loggers show: a confusion-matrix heat map and TP/FP/FN example grids (PIL only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CELL = 28
THUMB = 112


def confusion_image(cm: np.ndarray, labels: Sequence[str]) -> Image.Image:
    """Row-normalised confusion matrix (true label per row), labels down the left side."""
    c = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    margin = 8 + 7 * min(24, max((len(s) for s in labels), default=1))
    img = Image.new("RGB", (margin + c * CELL + 4, 20 + c * CELL + 4), "white")
    draw = ImageDraw.Draw(img)
    draw.text((margin, 4), "predicted →", fill="black")
    for i in range(c):
        draw.text((4, 20 + i * CELL + CELL // 3), labels[i][:24], fill="black")
        for j in range(c):
            v = float(norm[i, j])
            shade = int(255 * (1 - v))
            x, y = margin + j * CELL, 20 + i * CELL
            draw.rectangle(
                [x, y, x + CELL - 1, y + CELL - 1],
                fill=(shade, shade, 255),
                outline=(220, 220, 220),
            )
            if cm[i, j]:
                draw.text(
                    (x + 3, y + CELL // 3),
                    str(int(cm[i, j]))[:4],
                    fill="white" if v > 0.5 else "black",
                )
    return img


def example_grid(paths: Sequence[Path], captions: Sequence[str]) -> Image.Image:
    """Thumbnails side by side, each captioned (e.g. the predicted label and its confidence)."""
    n = max(1, len(paths))
    grid = Image.new("RGB", (n * (THUMB + 4), THUMB + 18), "white")
    draw = ImageDraw.Draw(grid)
    for i, (path, caption) in enumerate(zip(paths, captions, strict=True)):
        try:
            with Image.open(path) as im:
                im.draft("RGB", (THUMB, THUMB))
                thumb = im.convert("RGB")
                thumb.thumbnail((THUMB, THUMB))
        except (OSError, ValueError):
            thumb = Image.new("RGB", (THUMB, THUMB), "gray")
        grid.paste(thumb, (i * (THUMB + 4), 0))
        draw.text((i * (THUMB + 4), THUMB + 3), caption[:18], fill="black")
    return grid
