"""Review subsets for ``ct-infer merge``: only some datasets, a few crops per label.

The seed's ``--datasets`` keeps the crops (and images) of the named datasets; its
``--samples-per-label N --seed S`` draws up to N crops per label at random, reproducibly,
and keeps only the images those crops come from, so a reviewer loads a small file into
Timelapse. A crop's dataset is its table's ``dataset`` column, else the first folder of
its path; a crop's label is its true label, else the classifier's top class.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
from attrs import frozen

from ct_io.errors import CamtrapError
from ct_io.md import MDResults

#: The seed's default ``--seed``.
DEFAULT_SEED = 123


@frozen
class ReviewSubset:
    """Which crops and images a merge keeps (all, when nothing is set)."""

    datasets: tuple[str, ...] = ()
    samples_per_label: int | None = None
    seed: int = DEFAULT_SEED

    @property
    def active(self) -> bool:
        """Whether this subset leaves anything out."""
        return bool(self.datasets) or self.samples_per_label is not None


def first_folder(path: str) -> str:
    """``"idfg/cam1/a.jpg"`` → ``"idfg"`` (``""`` for a path with no folder)."""
    head, sep, _ = path.partition("/")
    return head if sep else ""


def crop_datasets(frame: pd.DataFrame) -> pd.Series:
    """Each row's dataset: the ``dataset`` column, else the first folder of ``path``."""
    if "dataset" in frame.columns:
        return frame["dataset"].astype(str)
    return frame["path"].astype(str).map(first_folder)


def crop_labels(frame: pd.DataFrame, labels: Sequence[str]) -> pd.Series:
    """Each row's label: the true ``label`` column, else the classifier's top class."""
    if "label" in frame.columns:
        return frame["label"].astype(str)
    if not labels or any(label not in frame.columns for label in labels):
        raise CamtrapError("--samples-per-label needs a 'label' column or a probability per label")
    top = frame[list(labels)].to_numpy(np.float64).argmax(axis=1)
    return pd.Series(np.asarray(labels, dtype=object)[top], index=frame.index)


def select_rows(frame: pd.DataFrame, labels: Sequence[str], subset: ReviewSubset) -> pd.DataFrame:
    """The rows of ``frame`` the subset keeps, in their original order."""
    if subset.datasets:
        datasets = crop_datasets(frame)
        unknown = sorted(set(subset.datasets) - set(datasets))
        if unknown:
            known = ", ".join(sorted(set(datasets))[:10]) or "none"
            raise CamtrapError(
                f"--datasets {', '.join(unknown)}: no crop of the CSV is from it (datasets: {known})"
            )
        frame = frame[datasets.isin(subset.datasets).to_numpy()]
    if subset.samples_per_label is not None:
        if subset.samples_per_label < 1:
            raise CamtrapError("--samples-per-label must be 1 or more")
        rng = np.random.default_rng(subset.seed)
        keep: list[int] = []
        by_label = crop_labels(frame, labels)
        for _, positions in sorted(by_label.groupby(by_label).indices.items()):
            n = min(subset.samples_per_label, len(positions))
            keep.extend(rng.choice(positions, size=n, replace=False).tolist())
        frame = frame.iloc[sorted(keep)]
    return frame


def image_dataset(file: str, strip_prefix: str) -> str:
    """The dataset of an MD JSON image: ``strip_prefix`` when given (the file names carry no
    dataset folder), else the first folder of its file name."""
    return strip_prefix.strip("/") if strip_prefix else first_folder(file)


def keep_images(
    md: MDResults, subset: ReviewSubset, strip_prefix: str, merged: Collection[str]
) -> MDResults:
    """``md`` with only the images the subset keeps: those of ``subset.datasets``, and with
    ``samples_per_label`` only the images with a merged crop (``merged``: their files)."""
    images = md.images
    if subset.datasets:
        wanted = set(subset.datasets)
        images = [im for im in images if image_dataset(im.file, strip_prefix) in wanted]
    if subset.samples_per_label is not None:
        images = [im for im in images if im.file in merged]
    md.images = images
    return md
