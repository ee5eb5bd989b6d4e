"""A CSV output written in atomic chunks, so an interrupted run resumes where it stopped.

While a run is going, rows land in ``<output>.partial/chunk-NNNNNN.csv`` files, each
written atomically. ``finish()`` joins the finished output (if any), then the chunks, into
the final file (atomically, gzipped for ``.gz``) and removes the partial folder. A rerun
reads both to know which keys are done.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ct_io.errors import CamtrapError
from ct_io.tables import read_csv

log = logging.getLogger(__name__)

FLOAT_FORMAT = "%.6g"


class ChunkedCsv:
    """Rows keyed by ``key`` (e.g. ``path``) with fixed ``columns``."""

    def __init__(
        self,
        output: str | Path,
        columns: Sequence[str],
        *,
        key: str = "path",
        overwrite: bool = False,
    ) -> None:
        self.output = Path(output)
        self.columns = list(columns)
        self.key = key
        self.partial = self.output.with_name(self.output.name + ".partial")
        if overwrite:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.output.unlink(missing_ok=True)
        self._chunks = sorted(self.partial.glob("chunk-*.csv")) if self.partial.is_dir() else []
        self.done: set[str] = set()
        for source in ([self.output] if self.output.is_file() else []) + self._chunks:
            frame = read_csv(source, dtype={key: str})
            if list(frame.columns) != self.columns:
                raise CamtrapError(
                    f"{source}: columns differ from this run's (another model or label set?) — "
                    "use --overwrite to start over, or another output path"
                )
            self.done.update(frame[key].tolist())

    def write(self, frame: pd.DataFrame) -> None:
        """Add rows as one atomic chunk."""
        if frame.empty:
            return
        self.partial.mkdir(parents=True, exist_ok=True)
        number = int(self._chunks[-1].stem.split("-")[1]) + 1 if self._chunks else 0
        path = self.partial / f"chunk-{number:06d}.csv"
        write_csv_floats(frame[self.columns], path)
        self._chunks.append(path)
        self.done.update(frame[self.key].tolist())

    def finish(self) -> pd.DataFrame:
        """Join everything into the final output; returns the whole table."""
        parts = [
            read_csv(p, dtype={self.key: str})
            for p in ([self.output] if self.output.is_file() else []) + self._chunks
        ]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=self.columns)
        frame = frame.drop_duplicates(self.key, keep="last")
        if self._chunks or not self.output.is_file():
            write_csv_floats(frame, self.output)
        shutil.rmtree(self.partial, ignore_errors=True)
        self._chunks = []
        return frame


def write_csv_floats(frame: pd.DataFrame, path: Path) -> None:
    """``write_csv`` with compact float formatting (6 significant digits)."""
    import gzip

    from ct_io.atomic import atomic_open

    text = frame.to_csv(index=False, float_format=FLOAT_FORMAT).encode("utf-8")
    with atomic_open(path, "wb") as fh:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(text)
        else:
            fh.write(text)
