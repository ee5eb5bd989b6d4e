"""The typed accessors over the data-source registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ct_io.hookspecs import DataSource, FetchedDataset
from ct_io.plugins import CamtrapPluginManager, Registration, collect

if TYPE_CHECKING:
    from rich.progress import Progress


def get_data_source(name: str, pm: CamtrapPluginManager | None = None) -> Registration:
    """The registered data source called ``name`` (unknown names suggest close matches)."""
    return collect("data source", pm).get(name)


def list_data_sources(pm: CamtrapPluginManager | None = None) -> list[Registration]:
    """Every registered data source."""
    return list(collect("data source", pm))


def fetch(
    name: str,
    out_dir: Path,
    options: Mapping[str, Any] | None = None,
    *,
    progress: Progress | None = None,
    pm: CamtrapPluginManager | None = None,
) -> FetchedDataset:
    """Build data source ``name`` with ``options`` (validated) and fetch it into ``out_dir``."""
    source: DataSource = get_data_source(name, pm).create(options=options)
    return source.fetch(Path(out_dir), progress)
