"""The review page's decisions in its files, without a browser: what an earlier list said
comes back on undo, the latest decision on an image wins, a crash between the two writes
of a decision is repaired on the next start, and queues are built as documented."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ct_infer.webreview.session import ReviewOptions, open_session
from ct_infer.webreview.store import MislabeledLists
from ct_io.errors import CamtrapError
from ct_taxonomy.mislabeled import read_mislabeled_csv

WHERE = {
    "a.jpg___crop00.jpg": ("ds", "cam/a.jpg"),
    "a.jpg___crop01.jpg": ("ds", "cam/a.jpg"),
    "b.jpg___crop00.jpg": ("ds", "cam/b.jpg"),
}


def _lists(folder: Path) -> MislabeledLists:
    return MislabeledLists(folder, WHERE, lambda dataset, label: f"{label} class")


def test_undo_and_keep_restore_what_the_list_said_before(tmp_path: Path) -> None:
    folder = tmp_path / "mislabeled"
    folder.mkdir()
    # an entry from an earlier review (Timelapse) that this review will override
    pd.DataFrame({"file": ["cam/b.jpg"], "correct_class": ["elk"]}).to_csv(
        folder / "DS.csv", index=False
    )
    lists = _lists(folder)
    lists.decide("b.jpg___crop00.jpg", "relabel", "moose")
    lists.decide("a.jpg___crop00.jpg", "accept", "deer")
    assert read_mislabeled_csv(folder / "DS.csv") == {
        "cam/b.jpg": "moose class",
        "cam/a.jpg": "deer class",
    }  # the existing file is found ignoring case, and kept
    # the latest decision on any crop of an image counts
    lists.decide("a.jpg___crop01.jpg", "bad_crop", None)
    assert read_mislabeled_csv(folder / "DS.csv")["cam/a.jpg"] is None
    lists.decide("a.jpg___crop01.jpg", None, None)  # undo: the earlier crop's decision again
    assert read_mislabeled_csv(folder / "DS.csv")["cam/a.jpg"] == "deer class"
    lists.decide("b.jpg___crop00.jpg", "keep", "elk")
    lists.decide("a.jpg___crop00.jpg", None, None)
    assert read_mislabeled_csv(folder / "DS.csv") == {"cam/b.jpg": "elk"}
    with pytest.raises(CamtrapError, match="not a crop of this review"):
        lists.decide("elsewhere.jpg", "accept", "deer")


def test_a_crash_between_log_and_list_is_repaired_on_start(tmp_path: Path) -> None:
    folder = tmp_path / "mislabeled"
    lists = _lists(folder)
    lists.decide("b.jpg___crop00.jpg", "not_animal", None)
    (folder / "ds.csv").unlink()  # as if killed after the log was written
    again = _lists(folder)
    again.sync()
    assert read_mislabeled_csv(folder / "ds.csv") == {"cam/b.jpg": None}
    assert again.log.decisions["b.jpg___crop00.jpg"].kind == "not_animal"


def test_session_queues_and_refusals(synthetic_run: Path, classified_md: Path) -> None:
    with pytest.raises(CamtrapError, match="give --images-dir"):
        open_session([classified_md], ReviewOptions())
    session = open_session([synthetic_run], ReviewOptions(margin=0.0))
    ids = list(session.queues)
    assert ids[:2] == ["mislabeled-train", "mislabeled-val"]
    assert {"label-antelope", "label-bird", "label-carnivore", "label-primate"} <= set(ids)
    antelope = session.queues["label-antelope"].items
    right = [it.predicted == "antelope" for it in antelope]
    assert right == sorted(right)  # mistakes first
    candidates = session.queues["mislabeled-val"].items
    assert candidates and all(it.predicted != it.label for it in candidates)
    key = antelope[0].key
    with pytest.raises(CamtrapError, match="unknown label"):
        session.decide("label-antelope", key, "relabel", "unicorn")
    with pytest.raises(CamtrapError, match="unknown decision"):
        session.decide("label-antelope", key, "delete")
    result = session.decide("label-antelope", key, "accept")
    assert result["decision"] == {"kind": "accept", "label": antelope[0].predicted}
    # the same crop in another queue shows the same decision
    shown = [
        it["decision"]
        for q in session.queues
        for it in session.queue_json(q)["items"]
        if it["key"] == key
    ]
    assert len(shown) >= 2 and all(d == result["decision"] for d in shown)
