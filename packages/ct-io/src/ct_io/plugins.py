"""The plugin manager: one pluggy project, one entry-point group, built-ins included.

Installing a package of this toolkit is what makes its built-ins appear: each package
declares ``[project.entry-points."camtrap.plugins"]`` exactly like a third-party plugin.

``CAMTRAP_PLUGINS`` restricts what loads: unset loads everything; a comma-separated list
of entry-point (or distribution) names loads the built-ins plus those; an empty value
loads built-ins only.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata as md
import os
import re
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
        """Register ``plugin`` (a module or object with hookimpls) and return its name.

        Fails with a one-line ``PluginError`` when the name is taken, a hook's arguments
        do not match its spec, or the plugin implements a hook that does not exist.
        """
        try:
            registered = self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            shown = name or self.get_canonical_name(plugin)
            raise PluginError(_describe_validation_error(exc, shown, distribution)) from None
        except ValueError as exc:  # name already taken, or the same object twice
            raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from None
        if registered is None:  # blocked
            raise PluginError(f"plugin {name!r} is blocked and cannot be registered")
        if distribution:
            self.distributions[registered] = distribution
        self.registry_cache.clear()
        try:
            check_pending(self)
        except PluginError:
            self.unregister_plugin(registered)
            raise
        return registered

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin by name (used by tests registering throwaway plugins)."""
        if self.unregister(name=name) is None:
            raise PluginError(f"no plugin named {name!r} is registered")
        self.distributions.pop(name, None)
        self.registry_cache.clear()

    def distribution_of(self, plugin_name: str) -> str:
        """The distribution that provided a plugin (``"?"`` when registered by hand)."""
        return self.distributions.get(plugin_name, "?")


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

    ``allow`` restricts third-party plugins by entry-point or distribution name
    (built-ins always load); when not given and ``use_env`` is true, ``CAMTRAP_PLUGINS``
    decides. A name in the allow-list that matches no installed plugin is an error.
    """
    pm = CamtrapPluginManager()
    if load_entry_points:
        if allow is not None:
            allowed: frozenset[str] | None = frozenset(allow)
        else:
            allowed = allowed_plugins_from_env() if use_env else None
        entry_points = _unique_entry_points()
        if allowed:
            _check_allowed(allowed, entry_points)
        for entry_point, dist in entry_points:
            builtin = dist in BUILTIN_DISTRIBUTIONS
            if not builtin and allowed is not None and not {entry_point.name, dist} & allowed:
                continue
            pm.register_plugin(_load(entry_point, dist), entry_point.name, distribution=dist)
    check_pending(pm)
    return pm


@functools.cache
def get_plugin_manager() -> CamtrapPluginManager:
    """The plugin manager CLIs share (built once per process)."""
    return make_plugin_manager()


def check_pending(pm: pluggy.PluginManager) -> None:
    """Fail loudly when a plugin implements a hook that does not exist (e.g. a typo)."""
    distributions = getattr(pm, "distributions", {})
    problems = []
    for hook_name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        close = difflib.get_close_matches(hook_name, hookspecs.ALL_HOOKS, n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            dist = distributions.get(impl.plugin_name, "?")
            problems.append(
                f"plugin {impl.plugin_name!r} ({dist}) implements unknown hook {hook_name!r}{hint}"
            )
    if problems:
        known = ", ".join(hookspecs.ALL_HOOKS)
        raise PluginError(f"{'; '.join(problems)} (known hooks: {known})")
    try:  # anything pluggy checks that the loop above does not
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(hookspecs.ALL_HOOKS)
        raise PluginError(f"{exc} — known hooks: {known}") from None


def _describe_validation_error(
    exc: pluggy.PluginValidationError, name: str, distribution: str | None
) -> str:
    """pluggy's multi-line message as one line, naming the plugin and its distribution."""
    detail = " ".join(str(exc).split())
    return (
        f"plugin {name!r} ({distribution or '?'}) is invalid: {detail} — "
        "a hook takes exactly the arguments its spec names (see ct_io.hookspecs)"
    )


def _unique_entry_points() -> list[tuple[md.EntryPoint, str]]:
    """Entry points of our group with their distribution; a name used by two
    distributions is an error naming both."""
    seen: dict[str, tuple[md.EntryPoint, str]] = {}
    for entry_point in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = _distribution_name(entry_point)
        if entry_point.name in seen:
            other_ep, other_dist = seen[entry_point.name]
            if other_dist == dist:
                continue  # the same distribution seen twice on sys.path
            raise PluginError(
                f"two installed distributions declare the plugin {entry_point.name!r}: "
                f"{other_dist} ({other_ep.value}) and {dist} ({entry_point.value}) — uninstall one"
            )
        seen[entry_point.name] = (entry_point, dist)
    return list(seen.values())


def _check_allowed(allowed: frozenset[str], entry_points: list[tuple[md.EntryPoint, str]]) -> None:
    """Every name in the allow-list must match an installed plugin or distribution."""
    installed = {ep.name for ep, _ in entry_points} | {dist for _, dist in entry_points}
    unknown = sorted(allowed - installed)
    if not unknown:
        return
    third_party = sorted({ep.name for ep, d in entry_points if d not in BUILTIN_DISTRIBUTIONS})
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(installed), n=1, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise PluginError(
        f"{PLUGINS_ENV} names plugin(s) that are not installed: {', '.join(hints)} — "
        f"installed third-party plugins: {', '.join(third_party) or 'none'}"
    )


def _load(entry_point: md.EntryPoint, dist: str = "?") -> ModuleType | object:
    try:
        return entry_point.load()
    except Exception as exc:  # a broken plugin must name itself, not crash the host obscurely
        raise PluginError(
            f"plugin {entry_point.name!r} ({dist}: {entry_point.value}) failed to import: {exc!r} — "
            f"fix or uninstall it, or set {PLUGINS_ENV}= to load built-ins only"
        ) from exc


def _distribution_name(entry_point: md.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    name = dist.metadata["Name"] if dist is not None else ""
    return re.sub(r"[-_.]+", "-", name).lower() if name else "?"
