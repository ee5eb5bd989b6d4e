"""Select training images from CCT datasets by a label spec (``queried_images.json``).

The seed's ``json_validator.py`` queried a private database; this selects from the
project's own COCO Camera Traps datasets, each with a dataset name. An image's classes
are the categories of its annotations (after known-mislabeled corrections). Each image
gets exactly one label:

- ``multilabel`` conflict: its classes map to two or more labels;
- ``mixed`` conflict: it also has classes that no label selects (another species in
  the frame, whose box would otherwise be trained as this label).

Conflicting images are reported and dropped, or kept with ``allow_multilabel`` (then
``label`` lists every label, and only boxes of selected classes are kept). Then
``max_count`` is sampled (see :mod:`ct_taxonomy.sampling`). Ground-truth boxes are
normalized to ``[x, y, w, h]`` in 0..1 when the image has its width and height.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from attrs import asdict, define, field

from ct_io.cct import CocoCameraTraps
from ct_io.errors import FormatError
from ct_io.indexes import image_locations
from ct_io.paths import unsafe_mask, unsafe_reason
from ct_io.problems import Problem
from ct_io.tables import QueriedBox, QueriedImage
from ct_taxonomy.mislabeled import Corrections
from ct_taxonomy.resolve import Resolution, resolve_spec
from ct_taxonomy.sampling import sample_with_priority
from ct_taxonomy.spec import LabelSpec
from ct_taxonomy.suggest import did_you_mean
from ct_taxonomy.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@define
class NamedDataset:
    """A CCT dataset and the name the spec and taxonomy use for it."""

    name: str
    cct: CocoCameraTraps


@define
class Conflict:
    """An image whose classes do not give it exactly one label."""

    image: str
    kind: str  # "multilabel" or "mixed"
    labels: list[str]
    classes: list[str]


@define
class DatasetStats:
    """What happened to one dataset's images."""

    images: int = 0
    matched: int = 0
    mislabeled_corrected: int = 0
    mislabeled_removed: int = 0
    mislabeled_not_found: int = 0
    unsafe_file_names: int = 0
    boxes_without_image_size: int = 0


@define
class Selection:
    """The selected images and everything worth reporting about the selection."""

    images: dict[str, QueriedImage]
    resolution: Resolution
    before_sampling: dict[str, int]
    conflicts: list[Conflict] = field(factory=list)
    datasets: dict[str, DatasetStats] = field(factory=dict)

    def counts(self) -> pd.DataFrame:
        """Images per label (rows) and dataset (columns), with totals."""
        pairs = [(lb, im.dataset) for im in self.images.values() for lb in im.label]
        frame = pd.DataFrame(pairs, columns=["label", "dataset"])
        table = pd.crosstab(frame["label"], frame["dataset"]) if len(frame) else pd.DataFrame()
        table = table.reindex(
            index=list(self.resolution.labels), columns=list(self.datasets), fill_value=0
        )
        return table.fillna(0).astype(int)


class SpecError(FormatError):
    """The spec does not resolve against the taxonomy or the datasets."""


def select_images(
    spec: LabelSpec,
    datasets: Sequence[NamedDataset],
    taxonomy: Taxonomy | None = None,
    *,
    mislabeled: Mapping[str, Corrections] | None = None,
    allow_multilabel: bool = False,
    ignore_missing_datasets: bool = False,
    seed: int = 123,
) -> Selection:
    """Every image of ``datasets`` the spec selects, one label each, sampled to ``max_count``.

    Raises :class:`SpecError` (listing every problem) when the spec names unknown taxa,
    datasets or dataset labels, or when labels overlap without ``allow_multilabel``.
    """
    names = [d.name for d in datasets]
    dup = {
        n for n in names if names.count(n) > 1 or [m.lower() for m in names].count(n.lower()) > 1
    }
    if dup:
        raise SpecError(
            spec.source,
            [_dataset_problem(f"dataset name(s) given twice: {', '.join(sorted(dup))}")],
        )
    categories = {
        d.name.lower(): {str(n).strip().lower() for n in d.cct.categories["name"].tolist()}
        for d in datasets
    }
    resolution = resolve_spec(
        spec,
        taxonomy,
        dataset_categories=categories,
        allow_multilabel=allow_multilabel,
        ignore_missing_datasets=ignore_missing_datasets,
    )
    if resolution.errors:
        raise SpecError(spec.source, resolution.errors)
    if taxonomy is not None and any(rule.taxa for rule in spec.labels.values()):
        for d in datasets:
            if d.name.lower() not in taxonomy.datasets:
                hint = did_you_mean(d.name, taxonomy.datasets.values())
                log.warning(
                    "dataset %r is not in the taxonomy, so taxa cannot select its images%s",
                    d.name,
                    f" ({hint})" if hint else "",
                )
    by_key = resolution.labels_by_key()
    candidates: list[pd.DataFrame] = []
    conflicts: list[Conflict] = []
    stats: dict[str, DatasetStats] = {}
    boxes: dict[str, list[QueriedBox]] = {}
    for d in datasets:
        lookup = {lb: labels for (ds, lb), labels in by_key.items() if ds == d.name.lower()}
        found, found_conflicts, found_boxes, stats[d.name] = _select_dataset(
            d, lookup, (mislabeled or {}).get(d.name), allow_multilabel
        )
        candidates.append(found)
        conflicts.extend(found_conflicts)
        boxes.update(found_boxes)
    table = (
        pd.concat(candidates, ignore_index=True)
        if candidates
        else pd.DataFrame(columns=["key", "dataset", "location", "class", "labels"])
    )
    before = {label: 0 for label in spec.labels}
    for labels in table["labels"].tolist():
        for lb in labels:
            before[lb] += 1
    keep = sample_with_priority(
        dict(
            zip(
                table["key"].tolist(),
                zip(table["dataset"].tolist(), table["labels"].tolist(), strict=True),
                strict=True,
            )
        ),
        spec,
        seed,
    )
    table = table[table["key"].isin(keep)].sort_values("key", kind="stable")
    images = {
        key: QueriedImage(
            dataset=ds, location=loc, dataset_class=cls, label=list(labels), bbox=boxes.get(key)
        )
        for key, ds, loc, cls, labels in zip(
            table["key"],
            table["dataset"],
            table["location"],
            table["class"],
            table["labels"],
            strict=True,
        )
    }
    return Selection(
        images=images,
        resolution=resolution,
        before_sampling=before,
        conflicts=sorted(conflicts, key=lambda c: c.image),
        datasets=stats,
    )


def _dataset_problem(message: str) -> Problem:
    return Problem("--dataset", message, "give each dataset once, as NAME=PATH")


def _select_dataset(
    d: NamedDataset,
    lookup: Mapping[str, list[str]],
    corrections: Corrections | None,
    allow_multilabel: bool,
) -> tuple[pd.DataFrame, list[Conflict], dict[str, list[QueriedBox]], DatasetStats]:
    """Candidate images of one dataset (before sampling), its conflicts, boxes and stats."""
    stats = DatasetStats(images=len(d.cct.images))
    im = d.cct.images
    names = {cid: str(n) for cid, n in d.cct.category_names.items()}
    an = d.cct.annotations
    classes = an["category_id"].map(names)
    pairs = pd.DataFrame(
        {
            "image_id": an["image_id"].to_numpy(),
            "class": classes.str.strip().str.lower().to_numpy(),
            "shown": classes.to_numpy(),
        }
    )
    pairs = pairs[pairs["class"].notna()].drop_duplicates(["image_id", "class"])
    if corrections:
        pairs = _apply_corrections(pairs, im, corrections, stats, d.name)
    pairs["selected"] = pairs["class"].isin(list(lookup))
    hit = pairs.loc[pairs["selected"], "image_id"].unique()
    pairs = pairs[pairs["image_id"].isin(hit)]
    per_image = _labels_per_image(pairs, lookup)
    kinds = np.where(
        per_image["n_labels"] > 1,
        "multilabel",
        np.where(per_image["n_unselected"] > 0, "mixed", ""),
    )
    per_image["kind"] = kinds
    info = im.set_index("id")
    info = info[~info.index.duplicated()]
    file_names = per_image.index.map(info["file_name"])
    conflicts = [
        Conflict(image=f"{d.name}/{f}", kind=k, labels=list(lbs), classes=cls.split(","))
        for f, k, lbs, cls in zip(
            file_names,
            per_image["kind"],
            per_image["labels"],
            per_image["all_classes"],
            strict=True,
        )
        if k
    ]
    if not allow_multilabel:
        per_image = per_image[per_image["kind"] == ""]
    locations = image_locations(d.cct).set_axis(im["id"].to_numpy())
    locations = locations[~locations.index.duplicated()]
    files = per_image.index.map(info["file_name"]).to_series(index=per_image.index).astype(str)
    unsafe = unsafe_mask(files)
    unsafe &= files.map(lambda f: unsafe_reason(f) is not None)
    if unsafe.any():
        stats.unsafe_file_names = int(unsafe.sum())
        log.warning(
            "%s: skipped %d image(s) with unsafe file names (e.g. %r)",
            d.name,
            stats.unsafe_file_names,
            files[unsafe].iloc[0],
        )
        per_image, files = per_image[~unsafe.to_numpy()], files[~unsafe]
    stats.matched = len(per_image)
    keys = (d.name + "/" + files).to_numpy()
    table = pd.DataFrame(
        {
            "key": keys,
            "dataset": d.name,
            "location": per_image.index.map(locations).astype(str).to_numpy(),
            "class": per_image["shown_classes"].to_numpy(),
            "labels": per_image["labels"].to_numpy(),
        }
    )
    key_of = dict(zip(per_image.index.tolist(), keys.tolist(), strict=True))
    boxes = _normalized_boxes(d.cct, key_of, set(lookup), names, stats)
    return table, conflicts, boxes, stats


def _apply_corrections(
    pairs: pd.DataFrame, im: pd.DataFrame, corrections: Corrections, stats: DatasetStats, name: str
) -> pd.DataFrame:
    """Replace the classes of known mislabeled images; drop those with no correct class."""
    ids = im.set_index("file_name")["id"]
    ids = ids[~ids.index.duplicated()]
    listed = pd.Series(corrections, dtype=object)
    found = listed[listed.index.isin(ids.index)]
    stats.mislabeled_not_found = len(listed) - len(found)
    if stats.mislabeled_not_found:
        log.warning(
            "%s: %d mislabeled file(s) are not in the dataset", name, stats.mislabeled_not_found
        )
    affected = ids[found.index]
    pairs = pairs[~pairs["image_id"].isin(affected.to_numpy())]
    fixed = found[found.notna()]
    stats.mislabeled_corrected = len(fixed)
    stats.mislabeled_removed = len(found) - len(fixed)
    add = pd.DataFrame(
        {
            "image_id": ids[fixed.index].to_numpy(),
            "class": fixed.to_numpy(dtype=object),
            "shown": fixed.to_numpy(dtype=object),
        }
    )
    return pd.concat([pairs, add], ignore_index=True)


def _labels_per_image(pairs: pd.DataFrame, lookup: Mapping[str, list[str]]) -> pd.DataFrame:
    """Per image: its labels, how many of its classes no label selects, and its classes."""
    if pairs.empty:
        return pd.DataFrame(
            columns=["labels", "n_labels", "n_unselected", "all_classes", "shown_classes"],
            index=pd.Index([], name="image_id"),
        )
    pairs = pairs.sort_values(["image_id", "class"], kind="stable")
    counts = pairs.groupby("image_id", sort=False)["class"].transform("size")
    single = pairs[counts.to_numpy() == 1].set_index("image_id")
    out_single = pd.DataFrame(
        {
            "labels": [sorted(lookup[c]) for c in single["class"]],
            "n_unselected": 0,
            "all_classes": single["class"].to_numpy(),
            "shown_classes": single["shown"].astype(str).to_numpy(),
        },
        index=single.index,
    )
    multi = pairs[counts.to_numpy() > 1]
    rows = []
    for image_id, group in multi.groupby("image_id", sort=False):
        cls = group["class"].tolist()
        labels = sorted({lb for c in cls for lb in lookup.get(c, ())})
        rows.append(
            (
                image_id,
                labels,
                sum(c not in lookup for c in cls),
                ",".join(cls),
                ",".join(map(str, group["shown"])),
            )
        )
    out_multi = pd.DataFrame(
        rows, columns=["image_id", "labels", "n_unselected", "all_classes", "shown_classes"]
    ).set_index("image_id")
    out = pd.concat([out_single, out_multi]) if len(out_multi) else out_single
    out["n_labels"] = out["labels"].map(len)
    return out


def _normalized_boxes(
    cct: CocoCameraTraps,
    key_of: Mapping[object, str],
    selected: set[str],
    names: Mapping[int, str],
    stats: DatasetStats,
) -> dict[str, list[QueriedBox]]:
    """Image key → its boxes of selected classes, normalized and clipped to the image."""
    an = cct.annotations
    mask = an["image_id"].isin(list(key_of)) & an["bbox_x"].notna()
    mask &= an["category_id"].map(names).str.strip().str.lower().isin(list(selected))
    an = an[mask]
    if an.empty:
        return {}
    im = cct.images.set_index("id")
    im = im[~im.index.duplicated()]
    if "width" in im.columns and "height" in im.columns:
        width = pd.to_numeric(an["image_id"].map(im["width"]), errors="coerce").to_numpy(
            dtype=float
        )
        height = pd.to_numeric(an["image_id"].map(im["height"]), errors="coerce").to_numpy(
            dtype=float
        )
    else:
        width = height = np.full(len(an), np.nan)
    sized = (width > 0) & (height > 0)
    if not sized.all():
        stats.boxes_without_image_size = int((~sized).sum())
        log.warning(
            "%d box(es) dropped: their image has no width/height to normalize them — add width and height to the CCT images",
            stats.boxes_without_image_size,
        )
    an, width, height = an[sized], width[sized], height[sized]
    x = np.clip(an["bbox_x"].to_numpy(dtype=float) / width, 0.0, 1.0)
    y = np.clip(an["bbox_y"].to_numpy(dtype=float) / height, 0.0, 1.0)
    w = np.clip(an["bbox_w"].to_numpy(dtype=float) / width, 0.0, 1.0 - x)
    h = np.clip(an["bbox_h"].to_numpy(dtype=float) / height, 0.0, 1.0 - y)
    out: dict[str, list[QueriedBox]] = {}
    for image_id, bx, by, bw, bh in zip(
        an["image_id"].tolist(),
        x.round(6).tolist(),
        y.round(6).tolist(),
        w.round(6).tolist(),
        h.round(6).tolist(),
        strict=True,
    ):
        if bw > 0 and bh > 0:
            out.setdefault(key_of[image_id], []).append(QueriedBox(bbox=[bx, by, bw, bh]))
    return out


def selection_report(selection: Selection, *, seed: int) -> dict[str, object]:
    """A JSON-able account of the selection: labels, datasets, conflicts."""
    counts = selection.counts()
    return {
        "seed": seed,
        "images": len(selection.images),
        "labels": {
            label: {
                "dataset_labels": [f"{ds}|{lb}" for ds, lb in sorted(keys)],
                "images_before_sampling": selection.before_sampling.get(label, 0),
                "images": {str(ds): int(n) for ds, n in counts.loc[label].items()}
                if label in counts.index
                else {},
            }
            for label, keys in selection.resolution.labels.items()
        },
        "datasets": {name: asdict(st) for name, st in selection.datasets.items()},
        "conflicts": [
            {"image": c.image, "kind": c.kind, "labels": c.labels, "classes": c.classes}
            for c in selection.conflicts
        ],
        "warnings": [str(p) for p in selection.resolution.warnings],
    }
