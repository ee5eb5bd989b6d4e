"""The data-source contract and the typed accessors over the registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ct_io.options import build_options
from ct_io.registry import PluginKind, Registration, collect

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.plugins import CamtrapPluginManager

#: The CCT ``info`` key where a source records its images folder (absolute, or relative to
#: the CCT file's folder) when they are not beside the file: the ``folder`` source, whose
#: images stay where they were. ``ct-io combine`` reads it.
IMAGES_DIR_KEY = "images_dir"


@frozen
class FetchedDataset:
    """Where a fetched dataset landed: its CCT file, images folder and optional MD JSON."""

    name: str
    cct_path: Path
    images_dir: Path
    detections_path: Path | None = None


def get_data_source(name: str, pm: CamtrapPluginManager | None = None) -> Registration:
    """The registered data source called ``name`` (unknown names suggest close matches)."""
    return collect(PluginKind.DATA_SOURCE, pm).get(name)


def list_data_sources(pm: CamtrapPluginManager | None = None) -> list[Registration]:
    """Every registered data source."""
    return list(collect(PluginKind.DATA_SOURCE, pm))


def fetch(
    name: str,
    out_dir: Path,
    options: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
    pm: CamtrapPluginManager | None = None,
) -> FetchedDataset:
    """Build data source ``name`` with ``options`` (validated) and fetch it into ``out_dir``."""
    reg = get_data_source(name, pm)
    opts = build_options(reg, options or {})
    source = reg.factory(opts) if reg.options is not None else reg.factory()
    result: FetchedDataset = source.fetch(Path(out_dir), progress)
    return result
