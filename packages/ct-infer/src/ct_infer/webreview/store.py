"""Decisions, saved as they are made, into the files the command-line loop uses.

Every decision is written twice, each write atomic (temp file, fsync, rename): first into
the source's decision log (a small JSON file: what was decided on which crop, so a page
closed or a server killed resumes where it stopped), then into the output the rest of the
toolkit reads:

- crops of a training run → the known-mislabeled lists ``<folder>/<dataset>.csv``
  (``file, correct_class``) that ``ct-taxonomy select`` and ``ct-train run`` apply: the
  image's class becomes the accepted or chosen label's dataset class; "not an animal" and
  "bad crop" leave the class empty, which drops the image; "keep the label" (or undo)
  puts back whatever the list said before the review touched the image;
- detections of new photos (a ``run`` / ``merge`` output) → a corrected MD JSON: the
  accepted or chosen class at confidence 1.0, "not an animal" removes the box, "bad crop"
  removes its classifications.

On start, every output is rewritten from the log, so a server killed between the two
writes of a decision loses nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from attrs import asdict, frozen

from ct_io.errors import CamtrapError
from ct_io.jsonio import read_json, write_json
from ct_io.md import MDResults, md_to_dict
from ct_io.paths import safe_join
from ct_io.tables import write_csv

log = logging.getLogger(__name__)

#: What a reviewer can decide about a crop.
KINDS = ("accept", "keep", "relabel", "not_animal", "bad_crop")
LOG_FORMAT = "ct-infer-review"


@frozen
class Decision:
    """One decision: its kind, the label it means (accept: the prediction; relabel: the
    chosen one; keep: the crop's label), and its order among all decisions."""

    kind: str
    label: str | None = None
    seq: int = 0
    at: str = ""


class DecisionLog:
    """Key → decision, kept in a JSON file rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.decisions: dict[str, Decision] = {}
        self.extra: dict[str, Any] = {}
        if path.is_file():
            data = read_json(path)
            if not isinstance(data, dict) or data.get("format") != LOG_FORMAT:
                raise CamtrapError(f"{path}: not a ct-infer review log — move it away")
            for key, d in (data.get("decisions") or {}).items():
                self.decisions[str(key)] = Decision(
                    str(d["kind"]), d.get("label"), int(d.get("seq", 0)), str(d.get("at", ""))
                )
            self.extra = dict(data.get("extra") or {})
        self.seq = max((d.seq for d in self.decisions.values()), default=0)

    def set(self, key: str, kind: str | None, label: str | None = None) -> Decision | None:
        """Record (``kind`` None: forget) the decision on ``key`` and save the log."""
        if kind is None:
            self.decisions.pop(key, None)
            self.save()
            return None
        self.seq += 1
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        decision = Decision(kind, label, self.seq, now)
        self.decisions[key] = decision
        self.save()
        return decision

    def save(self) -> None:
        write_json(
            self.path,
            {
                "format": LOG_FORMAT,
                "version": 1,
                "decisions": {k: asdict(d) for k, d in sorted(self.decisions.items())},
                "extra": self.extra,
            },
        )


# ---------------------------------------------------------------- training crops


def list_path(folder: Path, dataset: str) -> Path:
    """``<folder>/<dataset>.csv``, or the existing file whose name matches ignoring case
    (as ``ct-taxonomy`` finds it)."""
    if folder.is_dir():
        for p in folder.glob("*.csv"):
            if p.stem.lower() == dataset.lower():
                return p
    return safe_join(folder, f"{dataset}.csv")


def read_list(path: Path) -> dict[str, str | None]:
    from ct_taxonomy.mislabeled import read_mislabeled_csv

    return read_mislabeled_csv(path) if path.is_file() else {}


def write_list(path: Path, entries: Mapping[str, str | None]) -> None:
    files = sorted(entries)
    frame = pd.DataFrame({"file": files, "correct_class": [entries[f] or "" for f in files]})
    write_csv(frame, path)


class MislabeledLists:
    """Decisions on training crops → the known-mislabeled lists of their datasets.

    ``where`` maps a crop to its (dataset, image file name in the dataset's CCT);
    ``class_of(dataset, label)`` gives the dataset class a label stands for.
    """

    def __init__(
        self,
        folder: Path,
        where: Mapping[str, tuple[str, str]],
        class_of: Callable[[str, str], str],
    ) -> None:
        self.folder = folder
        self.where = where
        self.class_of = class_of
        self.log = DecisionLog(folder / "review_decisions.json")
        #: dataset → file → [listed before the review, its class then]
        self.originals: dict[str, dict[str, list[Any]]] = self.log.extra.setdefault("originals", {})

    def decide(self, key: str, kind: str | None, label: str | None) -> Decision | None:
        if key not in self.where:
            raise CamtrapError(f"{key}: not a crop of this review")
        dataset, file = self.where[key]
        listed = read_list(list_path(self.folder, dataset))
        seen = self.originals.setdefault(dataset, {})
        if file not in seen:
            seen[file] = [file in listed, listed.get(file)]
        decision = self.log.set(key, kind, label)
        self._write(dataset, [file])
        return decision

    def sync(self) -> None:
        """Rewrite every list entry the log decides (after a crash between two writes)."""
        touched: dict[str, list[str]] = {}
        for key in self.log.decisions:
            if key in self.where:
                dataset, file = self.where[key]
                touched.setdefault(dataset, []).append(file)
        for dataset, files in touched.items():
            self._write(dataset, files)

    def _write(self, dataset: str, files: list[str]) -> None:
        path = list_path(self.folder, dataset)
        entries = read_list(path)
        before = dict(entries)
        for file in files:
            latest = self._latest(dataset, file)
            original = self.originals.get(dataset, {}).get(file, [False, None])
            if latest is None or latest.kind == "keep":
                if original[0]:
                    entries[file] = original[1]
                else:
                    entries.pop(file, None)
            elif latest.kind in ("accept", "relabel") and latest.label:
                entries[file] = self.class_of(dataset, latest.label)
            else:  # not an animal, bad crop: the image is dropped
                entries[file] = None
        if entries != before or (entries and not path.is_file()):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_list(path, entries)

    def _latest(self, dataset: str, file: str) -> Decision | None:
        found = [d for k, d in self.log.decisions.items() if self.where.get(k) == (dataset, file)]
        return max(found, key=lambda d: d.seq) if found else None


# ---------------------------------------------------------------- detections


class CorrectedDetections:
    """Decisions on detections of an MD JSON → a corrected copy of it (``output``)."""

    def __init__(self, md: MDResults, output: Path) -> None:
        self.original = md_to_dict(md)
        self.output = output
        self.log = DecisionLog(output.with_name(output.name + ".decisions.json"))

    def decide(self, key: str, kind: str | None, label: str | None) -> Decision | None:
        decision = self.log.set(key, kind, label)
        self.sync()
        return decision

    def sync(self) -> None:
        """Write the corrected MD JSON: the original with every decision applied (nothing
        before the first decision)."""
        if not self.log.decisions and not self.output.is_file():
            return
        doc = dict(self.original)
        cats = dict(doc.get("classification_categories") or {})
        ids = {name: cid for cid, name in cats.items()}
        by_file: dict[str, dict[int, Decision]] = {}
        for key, made in self.log.decisions.items():
            file, _, index = key.rpartition("#")
            by_file.setdefault(file, {})[int(index)] = made
        images = []
        for im in doc.get("images", []):
            decided = by_file.get(im.get("file", ""))
            if not decided or not im.get("detections"):
                images.append(im)
                continue
            im = copy.deepcopy(im)
            kept = []
            for k, det in enumerate(im["detections"]):
                d = decided.get(k)
                if d is None or d.kind == "keep":
                    kept.append(det)
                elif d.kind == "not_animal":
                    continue
                elif d.kind == "bad_crop":
                    det.pop("classifications", None)
                    kept.append(det)
                elif d.label:
                    if d.label not in ids:
                        new = str(max((int(c) for c in cats if c.isdigit()), default=-1) + 1)
                        cats[new], ids[d.label] = d.label, new
                    det["classifications"] = [[ids[d.label], 1.0]]
                    kept.append(det)
            im["detections"] = kept
            images.append(im)
        doc["images"] = images
        if cats:
            doc["classification_categories"] = cats
        write_json(self.output, doc)
