"""Classifications of video frames merged into MegaDetector's video results, rolled up per clip.

Crops of a clip's frames are named after MegaDetector's frames
(``clip.mp4/frame000120.jpg___crop00_<detector>.jpg``), so the frame-level form of the
results (:func:`ct_io.md_video.to_frame_level`) is merged like photos. Then:

- each clip is a sequence: the frames' detections are smoothed towards the clip's
  confidence-weighted mean (:func:`ct_infer.smoothing.smooth`, strength ``--smoothing``);
- the clip's roll-up is that mean itself (``smooth`` at strength 1), written on the clip's
  per-video entry as ``clip_classifications: [[class_id, conf], ...]`` (threshold and
  top-k as for detections);
- per-video input is written back per video (the form Timelapse imports); frame-level
  input too when ``frame_rates`` are known (``ct-infer run`` reads them from the clips),
  otherwise it stays frame-level, without roll-ups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import evolve

from ct_infer.crops import parse_crop_name
from ct_infer.merge import MergeOptions, MergeReport, _classifications, merge_classifications
from ct_infer.smoothing import smooth
from ct_io.md import MDImage, MDResults
from ct_io.md_video import (
    CLIP_CLASSIFICATIONS,
    frame_entries,
    to_frame_level,
    to_video_level,
    videos_of,
)
from ct_io.video import parse_frame_file

if TYPE_CHECKING:
    import pandas as pd


def merge_media(
    md: MDResults,
    outputs: pd.DataFrame,
    labels: Sequence[str],
    options: MergeOptions,
    *,
    gt_index: Mapping[tuple[str, int], int] | None = None,
    frame_rates: Mapping[str, float] | None = None,
) -> tuple[MDResults, MergeReport]:
    """:func:`~ct_infer.merge.merge_classifications` for results that may hold video clips
    (either of MegaDetector's forms): frames merged like photos, clips rolled up;
    ``frame_rates`` (clip → fps) lets frame-level input be written per video."""
    if not videos_of(md):
        return merge_classifications(md, outputs, labels, options, gt_index=gt_index)
    return merge_with_clips(
        md, outputs, labels, options, gt_index=gt_index, frame_rates=frame_rates
    )


def clip_sequences(md: MDResults) -> dict[str, str]:
    """Frame file → its clip, for every frame entry of frame-level results."""
    return {im.file: clip for clip, _, im in frame_entries(md)}


def merge_with_clips(
    md: MDResults,
    outputs: pd.DataFrame,
    labels: Sequence[str],
    options: MergeOptions,
    *,
    gt_index: Mapping[tuple[str, int], int] | None = None,
    frame_rates: Mapping[str, float] | None = None,
) -> tuple[MDResults, MergeReport]:
    """:func:`merge_media` for results holding clips (see the module docstring)."""
    frames, videos = to_frame_level(md)
    sequences = {**clip_sequences(frames), **(options.sequences or {})}
    merged, report = merge_classifications(
        frames, outputs, labels, evolve(options, sequences=sequences), gt_index=gt_index
    )
    if not videos and frame_rates is None:
        return merged, report
    rollups = clip_rollups(merged, outputs, labels, options)
    report.clips = len(rollups)

    def extra(clip: str, _: list[MDImage]) -> dict[str, Any]:
        return {CLIP_CLASSIFICATIONS: rollups[clip]} if clip in rollups else {}

    return to_video_level(merged, videos, frame_rates, frame_extra=extra), report


def clip_rollups(
    frames: MDResults, outputs: pd.DataFrame, labels: Sequence[str], options: MergeOptions
) -> dict[str, list[list[object]]]:
    """Per clip, the confidence-weighted mean of its detections' probabilities, formatted
    as ``classifications`` (none with ``relative_conf``: that compares crops to true labels)."""
    if options.relative_conf:
        return {}
    by_file = frames.by_file()
    prefix = options.strip_prefix.strip("/") + "/" if options.strip_prefix else ""
    rows, clips, confs = [], [], []
    for r, path in enumerate(outputs["path"].astype(str)):
        ref = parse_crop_name(path)
        if ref is None:
            continue
        file = ref.file[len(prefix) :] if prefix and ref.file.startswith(prefix) else ref.file
        frame = parse_frame_file(file)
        im = by_file.get(file)
        if frame is None or im is None or not im.detections or ref.version is None:
            continue
        if not 0 <= ref.index < len(im.detections):
            continue
        rows.append(r)
        clips.append(frame[0])
        confs.append(im.detections[ref.index].conf)
    if not rows:
        return {}
    probs = outputs[list(labels)].to_numpy(np.float64)[rows]
    means = smooth(probs, clips, np.asarray(confs), 1.0)
    index = {label: j for j, label in enumerate(labels)}
    out: dict[str, list[list[object]]] = {}
    for clip, p in zip(clips, means, strict=True):
        if clip not in out:
            out[clip] = _classifications(p, index, None, evolve(options, label=None))
    return out
