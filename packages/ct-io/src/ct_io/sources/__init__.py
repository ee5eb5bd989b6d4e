"""Data sources: where training images and their annotations come from."""

from ct_io.sources.base import FetchedDataset, fetch, get_data_source, list_data_sources

__all__ = ["FetchedDataset", "fetch", "get_data_source", "list_data_sources"]
