"""Checks of MegaDetector per-video entries, as MegaDetector's own validator makes them
(used by :func:`ct_io.md.validate_md_dict`; the forms are described in :mod:`ct_io.md_video`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ct_io.problems import Problem

FRAME_RATE = "frame_rate"
FRAMES_PROCESSED = "frames_processed"
FRAME_NUMBER = "frame_number"


def video_problems(im: Any, path: str, format_version: float, add: Callable[..., None]) -> None:
    """Problems of one per-video entry (a decoded dict), as MegaDetector's validator checks
    them: ``frame_rate`` (from format 1.4), ``frames_processed`` (1.5), ``frame_number``."""
    failed = im.get("failure") is not None
    rate = im.get(FRAME_RATE)
    if rate is None:
        if format_version >= 1.4:
            add(
                Problem(
                    f"{path}.{FRAME_RATE}",
                    "missing on a video entry",
                    "MegaDetector's validator requires frame_rate for videos from format 1.4",
                    "warning",
                )
            )
    elif isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        add(Problem(f"{path}.{FRAME_RATE}", f"{rate!r} is not a number"))
    elif rate <= 0 and not failed:
        add(Problem(f"{path}.{FRAME_RATE}", f"{rate} is not positive", "-1 only on a failed clip"))
    listed = im.get(FRAMES_PROCESSED)
    if listed is None:
        if format_version >= 1.5 and not failed:
            add(
                Problem(
                    f"{path}.{FRAMES_PROCESSED}",
                    "missing on a video entry",
                    "list the sampled frame numbers (format 1.5+)",
                    "warning",
                )
            )
    elif not isinstance(listed, list) or not all(_frame_number_ok(n) for n in listed):
        add(Problem(f"{path}.{FRAMES_PROCESSED}", "must be a list of frame numbers (ints >= 0)"))
    for k, det in enumerate(im.get("detections") or []):
        if not isinstance(det, dict):
            continue
        n = det.get(FRAME_NUMBER)
        if n is None:
            add(
                Problem(
                    f"{path}.detections[{k}].{FRAME_NUMBER}",
                    "missing on a video detection",
                    "each detection of a per-video entry names its frame",
                )
            )
        elif not _frame_number_ok(n):
            add(Problem(f"{path}.detections[{k}].{FRAME_NUMBER}", f"{n!r} is not an int >= 0"))


def _frame_number_ok(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0
