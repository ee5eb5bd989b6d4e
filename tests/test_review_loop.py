"""The review loop closes: decisions ``ct-infer review`` saves for a run's crops land in the
run's ``mislabeled/`` lists, and the next ``ct-train run`` reselects with them (a crop
relabelled, an image dropped) without any config change."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ct_infer.webreview.session import _class_of, _crop_places
from ct_infer.webreview.store import MislabeledLists
from ct_train.config import load_config
from ct_train.pipeline.runner import RAN, SKIPPED, run_pipeline

CONFIG = {
    "sources": [{"name": "demo", "options": {"num_images": 48, "num_locations": 6}}],
    "data": {"sources_dir": "data"},
    "crop": {"size": 48, "workers": 1},
}


def test_review_decisions_feed_the_next_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yml").write_text(yaml.safe_dump(CONFIG))
    first = run_pipeline(load_config(run_dir / "config.yml"), stop="table")
    assert first.ok, first.error
    table = pd.read_csv(run_dir / "classification_ds.csv")
    where, _places = _crop_places(run_dir / "classification_ds.csv")
    lists = MislabeledLists(
        run_dir / "mislabeled", where, _class_of(run_dir / "selection" / "selection_report.json")
    )
    relabel, drop = table.iloc[0], table.iloc[-1]
    other = next(lb for lb in sorted(set(table["label"])) if lb != relabel["label"])
    lists.decide(relabel["path"], "relabel", other)
    lists.decide(drop["path"], "not_animal", None)
    assert (run_dir / "mislabeled" / "demo.csv").is_file()

    again = run_pipeline(load_config(run_dir / "config.yml"), stop="table")
    assert again.ok, again.error
    status = {s.name: s.status for s in again.stages}
    assert status["fetch"] == SKIPPED and status["select"] == RAN and status["table"] == RAN
    after = pd.read_csv(run_dir / "classification_ds.csv").set_index("path")
    assert after.loc[relabel["path"], "label"] == other
    assert drop["path"] not in after.index
