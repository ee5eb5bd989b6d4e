"""Detector plugins: typed accessors over the ``ct_register_detectors`` hook.

A detector turns image files into MegaDetector-format entries (``ct_io.md.MDImage``);
see ``ct_io.hookspecs.Detector``. Built-in: ``megadetector`` (:mod:`ct_crop.megadetector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ct_io.plugins import Registration, collect

if TYPE_CHECKING:
    from ct_io.hookspecs import Detector
    from ct_io.plugins import CamtrapPluginManager

#: Detection categories assumed when a detector does not say (MegaDetector's).
DEFAULT_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}


def list_detectors(pm: CamtrapPluginManager | None = None) -> list[Registration]:
    """Every registered detector, sorted by name."""
    return list(collect("detector", pm))


def get_detector(
    name: str, options: Mapping[str, Any] | None = None, pm: CamtrapPluginManager | None = None
) -> Detector:
    """Build the detector called ``name`` with ``options`` (validated against its options class).

    An unknown name raises ``PluginError`` suggesting close matches; bad options raise
    ``ConfigError`` with one line per problem.
    """
    detector: Detector = collect("detector", pm).get(name).create(options=options)
    return detector


def detection_categories(detector: object) -> dict[str, str]:
    """The detector's category map (its ``detection_categories`` attribute, else MegaDetector's)."""
    cats = getattr(detector, "detection_categories", None)
    return dict(cats) if isinstance(cats, Mapping) and cats else dict(DEFAULT_CATEGORIES)
