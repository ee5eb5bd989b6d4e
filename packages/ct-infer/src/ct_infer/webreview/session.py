"""A review session: the queues of crops from a run or files, the folders their pictures
are under, and where each decision goes.

``ct-infer review`` takes any mix of:

- a ``ct-train`` run folder (``resolved_config.yml``): its evaluation outputs, crops,
  dataset table and label index; decisions go to the run's known-mislabeled lists
  (``labels.mislabeled``, else ``<run>/mislabeled/``, which the next ``ct-train run``
  applies);
- an evaluation folder (``outputs_{split}.csv.gz``), with ``--crops-dir`` and
  ``--dataset-csv`` unless a run folder or a table beside it says where they are;
  decisions go to ``--mislabeled-dir`` (default: ``mislabeled/`` beside the folder);
- an MD JSON with classifications (``ct-infer run`` / ``merge`` output) and the photos'
  folder (``--images-dir``); decisions go to a corrected copy, ``<name>.reviewed.json``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from attrs import define, evolve, field

from ct_infer.webreview.items import (
    Item,
    Queue,
    candidate_queue,
    label_queue,
    low_confidence_queue,
    predictions,
)
from ct_infer.webreview.store import KINDS, CorrectedDetections, Decision, MislabeledLists
from ct_io.errors import CamtrapError

log = logging.getLogger(__name__)


@define
class ReviewOptions:
    """What to show and where to write, beyond what the inputs say."""

    margin: float = 0.95  # mislabel candidates: p(predicted) - p(label) at least this
    below: float = 0.5  # low-confidence detections: best class below this
    detection_threshold: float = 0.2
    categories: tuple[str, ...] = ("animal",)
    crops_dir: Path | None = None
    dataset_csv: Path | None = None
    mislabeled_dir: Path | None = None
    images_dir: Path | None = None
    output: Path | None = None  # corrected MD JSON (one MD JSON input)


@define
class ReviewSession:
    """Everything the review page serves."""

    queues: dict[str, Queue] = field(factory=dict)
    roots: dict[str, Path] = field(factory=dict)
    writers: dict[str, MislabeledLists | CorrectedDetections] = field(factory=dict)
    outputs: dict[str, str] = field(factory=dict)  # source id → where its decisions go
    _index: dict[str, dict[str, Item]] = field(factory=dict)
    _lock: threading.Lock = field(factory=threading.Lock)

    def add_queue(self, queue: Queue) -> None:
        n = 2
        while queue.id in self.queues:  # the same queue of a second input
            queue = evolve(queue, id=f"{queue.id.rsplit('~', 1)[0]}~{n}")
            n += 1
        self.queues[queue.id] = queue
        self._index[queue.id] = {it.key: it for it in queue.items}

    def decision(self, queue: Queue, key: str) -> Decision | None:
        return self.writers[queue.source].log.decisions.get(key)

    def summary(self) -> dict[str, Any]:
        queues = []
        for q in self.queues.values():
            decided = self.writers[q.source].log.decisions
            done = sum(1 for it in q.items if it.key in decided)
            queues.append(
                {
                    "id": q.id,
                    "title": q.title,
                    "kind": q.kind,
                    "count": len(q.items),
                    "decided": done,
                }
            )
        return {"queues": queues, "outputs": sorted(set(self.outputs.values()))}

    def queue_json(self, queue_id: str) -> dict[str, Any]:
        q = self.queue(queue_id)
        decided = self.writers[q.source].log.decisions
        items = []
        for it in q.items:
            d = decided.get(it.key)
            items.append(
                it.to_json() | {"decision": {"kind": d.kind, "label": d.label} if d else None}
            )
        return {
            "id": q.id,
            "title": q.title,
            "kind": q.kind,
            "labels": list(q.labels),
            "items": items,
            "output": self.outputs[q.source],
        }

    def queue(self, queue_id: str) -> Queue:
        if queue_id not in self.queues:
            raise CamtrapError(f"no queue {queue_id!r}")
        return self.queues[queue_id]

    def decide(
        self, queue_id: str, key: str, kind: str, label: str | None = None
    ) -> dict[str, Any]:
        """Record a decision (``kind`` ``clear``: forget it) and save it at once."""
        q = self.queue(queue_id)
        item = self._index[queue_id].get(key)
        if item is None:
            raise CamtrapError(f"{key!r} is not in queue {queue_id!r}")
        if kind not in (*KINDS, "clear"):
            raise CamtrapError(f"unknown decision {kind!r} (one of {', '.join(KINDS)}, clear)")
        if kind == "keep" and item.label is None:
            raise CamtrapError("a new photo has no label to keep: accept or pick a label")
        meant = {
            "accept": item.predicted,
            "keep": item.label,
            "relabel": label,
        }.get(kind)
        if kind == "relabel" and label not in q.labels:
            raise CamtrapError(f"unknown label {label!r}: pick one of the label index")
        with self._lock:
            d = self.writers[q.source].decide(key, None if kind == "clear" else kind, meant)
        return {"key": key, "decision": {"kind": d.kind, "label": d.label} if d else None}


def open_session(paths: Sequence[Path], options: ReviewOptions) -> ReviewSession:
    """Read the inputs, build their queues, and bring each output up to date with its log."""
    if not paths:
        raise CamtrapError("give a ct-train run folder, an evaluation folder or an MD JSON")
    session = ReviewSession()
    for n, path in enumerate(paths):
        if path.is_dir():
            _add_training(session, path, options, n)
        elif path.is_file() and path.suffix.lower() == ".json":
            _add_detections(session, path, options, n)
        else:
            raise CamtrapError(
                f"{path}: give a ct-train run folder, an evaluation folder (outputs_<split>.csv.gz) "
                "or an MD JSON with classifications (from ct-infer run / merge)"
            )
    for writer in session.writers.values():
        writer.sync()
    return session


# ---------------------------------------------------------------- training runs


def _add_training(session: ReviewSession, path: Path, options: ReviewOptions, n: int) -> None:
    from ct_infer.report import find_inputs
    from ct_infer.training_run import CT_TRAIN_CONFIG, MISLABELED_DIR, read_training_run

    if (path / CT_TRAIN_CONFIG).is_file():
        run = read_training_run(path)
        eval_dir = run.output_dir or path / "evaluation"
        crops, table = run.crops_dir, run.dataset_csv
        mislabeled = run.mislabeled_dir or path / MISLABELED_DIR
        selection = path / "selection" / "selection_report.json"
    else:
        eval_dir = path
        found = find_inputs(path)
        crops, table = found.crops_dir, found.dataset_csv
        mislabeled = path.resolve().parent / MISLABELED_DIR
        selection = path.resolve().parent / "selection" / "selection_report.json"
    crops = options.crops_dir or crops
    table = options.dataset_csv or table
    mislabeled = options.mislabeled_dir or mislabeled
    outputs = sorted(eval_dir.glob("outputs_*.csv.gz")) if eval_dir.is_dir() else []
    if not outputs:
        raise CamtrapError(
            f"{path}: no evaluation outputs (outputs_<split>.csv.gz) — run `ct-infer evaluate` "
            "(or ct-train run) first"
        )
    if crops is None or not crops.is_dir():
        raise CamtrapError(f"{path}: crops folder {crops or '?'} not found — give --crops-dir")
    if table is None or not table.is_file():
        raise CamtrapError(f"{path}: no dataset table (classification_ds.csv) — give --dataset-csv")
    preds, labels = _predictions(outputs)
    where, places = _crop_places(table)
    unknown = sorted(set(preds["path"]) - set(where))
    if unknown:
        raise CamtrapError(
            f"{len(unknown)} crop(s) of the outputs are not in {table}, e.g. {unknown[0]}"
        )
    root, source = f"r{n}", f"s{n}"
    session.roots[root] = crops
    session.writers[source] = MislabeledLists(mislabeled, where, _class_of(selection))
    session.outputs[source] = f"known-mislabeled lists in {mislabeled}"
    for split in dict.fromkeys(preds["split"]):
        listed_file = eval_dir / f"mislabeled_candidates_{split}.csv"
        listed = _listed(listed_file) if listed_file.is_file() else None
        session.add_queue(
            candidate_queue(
                preds,
                split,
                listed,
                options.margin,
                root=root,
                source=source,
                labels=labels,
                places=places,
            )
        )
    for label in labels:
        if (preds["label"] == label).any():
            session.add_queue(
                label_queue(preds, label, root=root, source=source, labels=labels, places=places)
            )


def _predictions(outputs: list[Path]) -> tuple[pd.DataFrame, list[str]]:
    from ct_infer.evaluate import read_outputs

    frames, labels = [], None
    for path in outputs:
        frame, these = read_outputs(path)
        if labels is not None and these != labels:
            raise CamtrapError(f"{path}: its label columns differ from the other splits'")
        labels = these
        split = path.name[len("outputs_") : -len(".csv.gz")]
        frames.append(predictions(frame.assign(split=split), these))
    assert labels is not None
    return pd.concat(frames, ignore_index=True).drop_duplicates("path"), labels


def _crop_places(table: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Crop → (dataset, image file name in the dataset's CCT), and crop → "dataset/location"."""
    from ct_infer.crops import parse_crop_name
    from ct_io.tables import read_csv

    frame = read_csv(table, required=["path", "dataset"], dtype=str).fillna("")
    where, places = {}, {}
    images = frame["image"] if "image" in frame.columns else pd.Series("", index=frame.index)
    locations = frame["location"] if "location" in frame.columns else images * 0
    for path, dataset, image, location in zip(
        frame["path"], frame["dataset"], images, locations, strict=True
    ):
        if image.startswith(dataset + "/"):
            file = image[len(dataset) + 1 :]
        else:
            ref = parse_crop_name(path)
            file = ref.file if ref else path
            first = PurePosixPath(file).parts[0]
            if first == dataset and len(PurePosixPath(file).parts) > 1:
                file = file[len(dataset) + 1 :]
        where[path] = (dataset, file)
        places[path] = f"{dataset}/{location}" if location else dataset
    return where, places


def _class_of(selection_report: Path):  # type: ignore[no-untyped-def]
    """label → the dataset class it stands for, from the run's selection report (the first
    class the label spec maps to it in that dataset); else the label itself."""
    from ct_io.jsonio import read_json

    mapping: dict[tuple[str, str], str] = {}
    if selection_report.is_file():
        report = read_json(selection_report)
        for label, info in (report.get("labels") or {}).items():
            for entry in info.get("dataset_labels") or []:
                dataset, _, cls = str(entry).partition("|")
                mapping.setdefault((dataset.lower(), str(label)), cls)

    def class_of(dataset: str, label: str) -> str:
        return mapping.get((dataset.lower(), label), label).lower()

    return class_of


def _listed(path: Path) -> list[str]:
    from ct_io.tables import read_csv

    return read_csv(path, required=["path"], dtype=str)["path"].tolist()


# ---------------------------------------------------------------- detections


def _add_detections(session: ReviewSession, path: Path, options: ReviewOptions, n: int) -> None:
    from ct_io.md import read_md

    md = read_md(path)
    if not md.classification_categories:
        raise CamtrapError(
            f"{path}: no classifications — review the output of `ct-infer run` or `merge`"
        )
    images = options.images_dir
    if images is None:
        first = next((im.file for im in md.images), None)
        if first is not None and (path.parent / first).is_file():
            images = path.parent
        else:
            raise CamtrapError(f"{path}: give --images-dir, the folder its file names start in")
    if not images.is_dir():
        raise CamtrapError(f"{images}: images folder not found")
    output = options.output or path.with_name(f"{path.stem}.reviewed.json")
    if output.resolve() == path.resolve():
        raise CamtrapError("--output must not be the MD JSON under review")
    root, source = f"r{n}", f"s{n}"
    session.roots[root] = images
    session.writers[source] = CorrectedDetections(md, output)
    session.outputs[source] = f"corrected MD JSON {output}"
    session.add_queue(
        low_confidence_queue(
            md,
            below=options.below,
            detection_threshold=options.detection_threshold,
            categories=options.categories,
            root=root,
            source=source,
            name=path.name,
        )
    )
