"""ct-io's built-in plugins, registered through the ``camtrap.plugins`` entry point."""

from __future__ import annotations

from typing import Any

from ct_io import hookimpl


@hookimpl
def ct_register_data_sources(register: Any) -> None:
    from ct_io.sources.demo import DemoOptions, DemoSource

    register(
        "demo",
        DemoSource,
        options=DemoOptions,
        description="Synthetic camera-trap dataset (no download)",
    )
    _register_download_sources(register)


def _register_download_sources(register: Any) -> None:
    from ct_io.sources.animl import AnimlOptions, AnimlSource
    from ct_io.sources.folder import FolderOptions, FolderSource
    from ct_io.sources.lila import LilaOptions, LilaSource

    register(
        "animl",
        AnimlSource,
        options=AnimlOptions,
        description="Images of an Animl CCT export, from S3",
    )
    register(
        "lila",
        LilaSource,
        options=LilaOptions,
        description="A LILA dataset or subset (Azure, GCP or AWS), anonymous",
    )
    register(
        "folder",
        FolderSource,
        options=FolderOptions,
        description="Local images with a CCT file or label-named sub-folders",
    )


@hookimpl
def ct_register_engines(register: Any) -> None:
    from ct_io.engine_ray import RayEngine
    from ct_io.engines import EngineOptions, LocalEngine

    register(
        "local",
        LocalEngine,
        options=EngineOptions,
        description="This machine's processes (the default)",
    )
    register(
        "ray",
        RayEngine,
        options=EngineOptions,
        description="A Ray cluster via Ray Data (pip install 'ct-crop[ray]' or 'ct-infer[ray]')",
    )
