"""The plugin manager: one pluggy project, one entry-point group, built-ins included.

Installing a package of this toolkit is what makes its built-ins appear: each package
declares ``[project.entry-points."camtrap.plugins"]`` exactly like a third-party plugin.

``CAMTRAP_PLUGINS`` restricts what loads: unset loads everything; a comma-separated list
of entry-point names loads the built-ins plus those; an empty value loads built-ins only.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
from collections.abc import Collection
from types import ModuleType

import pluggy

from ct_io import hookspecs
from ct_io.errors import PluginError

PROJECT = "camtrap"
ENTRY_POINT_GROUP = "camtrap.plugins"
PLUGINS_ENV = "CAMTRAP_PLUGINS"
BUILTIN_DISTRIBUTIONS = frozenset(
    {"ct-io", "ct-taxonomy", "ct-crop", "ct-splits", "ct-infer", "ct-train"}
)

hookimpl = pluggy.HookimplMarker(PROJECT)


class CamtrapPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution provided each plugin."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, str] = {}
        self.registry_cache: dict[str, object] = {}

    def register_plugin(
        self, plugin: object, name: str | None = None, *, distribution: str | None = None
    ) -> str:
        """Register ``plugin`` (a module or object with hookimpls) and return its name."""
        registered = self.register(plugin, name=name)
        if registered is None:  # blocked
            raise PluginError(f"plugin {name!r} is blocked and cannot be registered")
        if distribution:
            self.distributions[registered] = distribution
        self.registry_cache.clear()
        return registered

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin by name (used by tests registering throwaway plugins)."""
        self.unregister(name=name)
        self.distributions.pop(name, None)
        self.registry_cache.clear()


def allowed_plugins_from_env() -> frozenset[str] | None:
    """Third-party plugin names allowed by ``CAMTRAP_PLUGINS`` (None = all)."""
    value = os.environ.get(PLUGINS_ENV)
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def make_plugin_manager(
    *, load_entry_points: bool = True, allow: Collection[str] | None = None, use_env: bool = True
) -> CamtrapPluginManager:
    """Build a fresh plugin manager (a factory, not a global).

    ``allow`` restricts third-party plugins by entry-point name (built-ins always load);
    when not given and ``use_env`` is true, ``CAMTRAP_PLUGINS`` decides.
    """
    pm = CamtrapPluginManager()
    if load_entry_points:
        allowed = frozenset(allow) if allow is not None else (allowed_plugins_from_env() if use_env else None)
        for entry_point in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = _distribution_name(entry_point)
            builtin = dist in BUILTIN_DISTRIBUTIONS
            if not builtin and allowed is not None and entry_point.name not in allowed:
                continue
            if pm.has_plugin(entry_point.name):
                continue  # the same distribution seen twice on sys.path
            pm.register_plugin(_load(entry_point), entry_point.name, distribution=dist)
    check_pending(pm)
    return pm


@functools.cache
def get_plugin_manager() -> CamtrapPluginManager:
    """The plugin manager CLIs share (built once per process)."""
    return make_plugin_manager()


def check_pending(pm: pluggy.PluginManager) -> None:
    """Fail loudly when a plugin implements a hook that does not exist (e.g. a typo)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(hookspecs.ALL_HOOKS)
        raise PluginError(f"{exc} — known hooks: {known}") from None


def _load(entry_point: md.EntryPoint) -> ModuleType | object:
    try:
        return entry_point.load()
    except Exception as exc:  # a broken plugin must name itself, not crash the host obscurely
        raise PluginError(
            f"plugin {entry_point.name!r} ({entry_point.value}) failed to import: {exc!r} — "
            f"fix or uninstall it, or set {PLUGINS_ENV}= to load built-ins only"
        ) from exc


def _distribution_name(entry_point: md.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    name = dist.metadata["Name"] if dist is not None else ""
    return name.lower().replace("_", "-") if name else "?"
