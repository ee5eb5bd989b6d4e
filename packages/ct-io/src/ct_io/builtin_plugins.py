"""ct-io's built-in plugins, registered through the ``camtrap.plugins`` entry point."""

from __future__ import annotations

from typing import Any

from ct_io.plugins import hookimpl


@hookimpl
def ct_register_data_sources(register: Any) -> None:
    from ct_io.sources.demo import DemoOptions, DemoSource

    register("demo", DemoSource, options=DemoOptions, description="Synthetic camera-trap dataset (no download)")
