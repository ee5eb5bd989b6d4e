"""Crops of video frames are ordinary training rows; a clip's frames share one split.

The data stages of ``ct-train run`` on the demo source with synthetic clips: the clips'
MegaDetector per-video detections are cropped frame by frame, each frame's crop takes
its clip's location and label, and the split keeps every clip whole.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ct_train.config import load_config
from ct_train.pipeline.runner import run_pipeline


def test_frames_of_one_clip_never_straddle_splits(tmp_path: Path) -> None:
    demo = {
        "num_images": 24,
        "num_locations": 6,
        "width": 160,
        "height": 120,
        "blank_fraction": 0.0,
        "num_clips": 12,
        "clip_frames": 9,
        "clip_fps": 3,
        "clip_frame_sample": 3,
    }
    cfg = {
        "sources": [{"name": "demo", "options": demo}],
        "data": {"sources_dir": "data", "num_workers": 0},
        "crop": {"size": 32, "workers": 1},
        "splits": {"trials": 100},
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yml").write_text(yaml.safe_dump(cfg))
    result = run_pipeline(load_config(run_dir / "config.yml"), stop="split")
    assert result.ok, result.error
    table = pd.read_csv(run_dir / "classification_ds.csv", dtype=str)
    frames = table[table["path"].str.contains(r"\.mp4/frame", regex=True)].copy()
    assert len(frames) >= 12  # most clips have a detection on several sampled frames
    assert (
        frames["path"].str.match(r"^.*loc_\d+/clip_\d{4}\.mp4/frame0000\d\d\.jpg___crop\d\d_").all()
    )
    frames["clip"] = frames["path"].str.split("/frame").str[0]
    # the clip's location is its folder (the demo CCT), its sequence the clip
    assert (frames["location"] == frames["clip"].str.extract(r"(loc_\d+)/")[0]).all()
    assert frames.groupby("clip")["seq_id"].nunique().eq(1).all()
    splits = yaml.safe_load((run_dir / "splits.json").read_text())
    split_of = {(d, loc): name for name, pairs in splits.items() for d, loc in pairs}
    frames["split"] = [
        split_of.get((d, loc))
        for d, loc in zip(frames["dataset"], frames["location"], strict=False)
    ]
    assert frames["split"].notna().all()
    assert frames.groupby("clip")["split"].nunique().eq(1).all()
    assert frames["split"].nunique() > 1
