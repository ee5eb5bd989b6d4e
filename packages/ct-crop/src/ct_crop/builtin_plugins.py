"""ct-crop's built-in plugins, registered through the ``camtrap.plugins`` entry point."""

from __future__ import annotations

from typing import Any

from ct_io import hookimpl


@hookimpl
def ct_register_detectors(register: Any) -> None:
    from ct_crop.megadetector import MegaDetector, MegaDetectorOptions

    register(
        "megadetector",
        MegaDetector,
        options=MegaDetectorOptions,
        description="MegaDetector via the megadetector package (needs a local model file)",
    )
