"""The plugin manager and the registry of what plugins register.

Installed packages declare plugins in the ``camtrap.plugins`` entry-point group, built-ins
exactly like third-party ones. ``CAMTRAP_PLUGINS`` restricts the third-party ones: unset
loads all; a comma-separated list of entry-point (or distribution) names loads those; an
empty value loads built-ins only. ``collect(kind)`` calls every plugin's hook for a kind
(``"loss"``, see ``hookspecs.KINDS``) and credits each registration to its plugin.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata as md
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import attrs
import pluggy

from ct_io import hookspecs
from ct_io.errors import CamtrapError, PluginError
from ct_io.options import ConfigError, structure

ENTRY_POINT_GROUP = "camtrap.plugins"
PLUGINS_ENV = "CAMTRAP_PLUGINS"
BUILTIN_DISTRIBUTIONS = frozenset(
    {"ct-io", "ct-taxonomy", "ct-crop", "ct-splits", "ct-infer", "ct-train"}
)
_WAY_OUT = f"fix or uninstall it, or set {PLUGINS_ENV}= to load built-ins only"


@attrs.frozen
class Registration:
    """One named thing a plugin provides, credited to the plugin and its distribution."""

    kind: str
    name: str
    factory: Callable[..., Any]
    options: type | None
    description: str
    plugin: str
    distribution: str

    def create(self, *args: Any, options: Mapping[str, Any] | None = None) -> Any:
        """Call the factory with ``args`` and the validated ``options`` (if it takes any)."""
        built = build_options(self, options or {})
        return self.factory(*args) if self.options is None else self.factory(*args, built)


def build_options(reg: Registration, raw: Mapping[str, Any]) -> Any:
    """Options for a registration, validated against its options class (None if it has none)."""
    where = f"{reg.kind} {reg.name!r} options"
    if reg.options is None:
        if raw:
            raise ConfigError(where, [f"$: takes no options, got {', '.join(raw)}"])
        return None
    return structure(dict(raw), reg.options, where=where)


class Registry:
    """All registrations of one kind, sorted by name."""

    def __init__(self, kind: str, entries: Mapping[str, Registration]) -> None:
        self.kind = kind
        self._entries = dict(sorted(entries.items()))

    def get(self, name: str) -> Registration:
        """The registration called ``name``; an unknown name suggests close matches."""
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f" — did you mean {', '.join(map(repr, close))}?" if close else ""
        known = ", ".join(self._entries) or "none"
        raise PluginError(
            f"unknown {self.kind} {name!r}{hint} (known: {known}; `ct-io plugins` lists them)"
        )

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


class CamtrapPluginManager(pluggy.PluginManager):
    """A pluggy manager that knows each plugin's distribution and caches registries."""

    def __init__(self) -> None:
        super().__init__("camtrap")
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, str] = {}
        self.registries: dict[str, Registry] = {}

    def register_plugin(self, plugin: object, name: str, *, distribution: str = "?") -> str:
        """Register ``plugin`` (a module or object with hookimpls); a taken name, a hook
        with the wrong arguments or an unknown hook fails with a one-line ``PluginError``."""
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            detail = " ".join(str(exc).split())
            raise PluginError(
                f"plugin {name!r} ({distribution}) is invalid: {detail} — a hook takes "
                "exactly the arguments its spec names (see ct_io.hookspecs)"
            ) from None
        except ValueError as exc:  # the name is taken, or the same object is registered twice
            raise PluginError(f"cannot register plugin {name!r}: {exc}") from None
        self.distributions[name] = distribution
        try:
            check_pending(self)
        except PluginError:
            self.unregister_plugin(name)
            raise
        self.registries.clear()
        return name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin by name (tests register throwaway plugins)."""
        if self.unregister(name=name) is None:
            raise PluginError(f"no plugin named {name!r} is registered")
        self.distributions.pop(name, None)
        self.registries.clear()


def check_pending(pm: CamtrapPluginManager) -> None:
    """Fail loudly when a plugin implements a hook that does not exist (e.g. a typo)."""
    hooks = list(hookspecs.KINDS.values())
    problems = []
    for hook_name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        close = difflib.get_close_matches(hook_name, hooks, n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        for impl in (i for i in caller.get_hookimpls() if not i.optionalhook):
            dist = pm.distributions.get(impl.plugin_name, "?")
            problems.append(
                f"plugin {impl.plugin_name!r} ({dist}) implements unknown hook {hook_name!r}{hint}"
            )
    if problems:
        raise PluginError(f"{'; '.join(problems)} (known hooks: {', '.join(hooks)})")


def collect(kind: str, pm: CamtrapPluginManager | None = None) -> Registry:
    """Every registration of ``kind`` (``"loss"``...), gathered once per plugin manager.

    A plugin whose hook raises, registers a taken name, or passes something that is not a
    name / callable / attrs options class fails with a ``PluginError`` naming the plugin.
    """
    pm = pm or get_plugin_manager()
    if kind not in pm.registries:
        hook_name = hookspecs.KINDS[kind]
        entries: dict[str, Registration] = {}
        for impl in getattr(pm.hook, hook_name).get_hookimpls():  # in registration order
            plugin, dist = impl.plugin_name, pm.distributions.get(impl.plugin_name, "?")
            register = functools.partial(_register, entries, kind, plugin, dist)
            try:
                impl.function(register=register)
            except CamtrapError:
                raise
            except Exception as exc:  # a broken plugin must name itself
                raise PluginError(
                    f"plugin {plugin!r} ({dist}) failed in {hook_name}: {exc!r} — {_WAY_OUT}"
                ) from exc
        pm.registries[kind] = Registry(kind, entries)
    return pm.registries[kind]


def _register(
    entries: dict[str, Registration],
    kind: str,
    plugin: str,
    dist: str,
    name: str,
    factory: Callable[..., Any],
    *,
    options: type | None = None,
    description: str = "",
) -> None:
    """The ``register`` callback (``hookspecs.Register``) one plugin gets for one kind."""
    where = f"plugin {plugin!r} ({dist}) registers {kind} {name!r}"
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise PluginError(
            f"plugin {plugin!r} ({dist}): {kind} name {name!r} must be a non-empty string "
            "without surrounding spaces"
        )
    if not callable(factory):
        raise PluginError(f"{where}: factory {factory!r} is not callable")
    if options is not None and not (isinstance(options, type) and attrs.has(options)):
        raise PluginError(f"{where}: options must be an attrs class (or None), got {options!r}")
    if name in entries:
        other = entries[name]
        raise PluginError(
            f"{kind} {name!r} is registered twice: by plugin {other.plugin!r} "
            f"({other.distribution}) and by plugin {plugin!r} ({dist}) — "
            f"uninstall one, or restrict third-party plugins with {PLUGINS_ENV}"
        )
    entries[name] = Registration(kind, name, factory, options, str(description), plugin, dist)


# ---------------------------------------------------------------- loading entry points


def allowed_plugins_from_env() -> frozenset[str] | None:
    """Third-party plugin names allowed by ``CAMTRAP_PLUGINS`` (None = all)."""
    value = os.environ.get(PLUGINS_ENV)
    return None if value is None else frozenset(p.strip() for p in value.split(",") if p.strip())


def make_plugin_manager(
    *, load_entry_points: bool = True, allow: Collection[str] | None = None, use_env: bool = True
) -> CamtrapPluginManager:
    """A fresh plugin manager. ``allow`` restricts third-party plugins by entry-point or
    distribution name (``CAMTRAP_PLUGINS`` when not given and ``use_env``); built-ins always
    load; a name in the allow-list that matches no installed plugin is an error."""
    pm = CamtrapPluginManager()
    if not load_entry_points:
        return pm
    allowed = frozenset(allow) if allow is not None else None
    if allow is None and use_env:
        allowed = allowed_plugins_from_env()
    entry_points = _entry_points()
    if allowed:
        _check_allowed(allowed, entry_points)
    for ep, dist in entry_points:
        if dist in BUILTIN_DISTRIBUTIONS or allowed is None or {ep.name, dist} & allowed:
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must name itself
                raise PluginError(
                    f"plugin {ep.name!r} ({dist}: {ep.value}) failed to import: {exc!r} — {_WAY_OUT}"
                ) from exc
            pm.register_plugin(plugin, ep.name, distribution=dist)
    return pm


@functools.cache
def get_plugin_manager() -> CamtrapPluginManager:
    """The plugin manager commands share (built once per process)."""
    return make_plugin_manager()


def _entry_points() -> list[tuple[md.EntryPoint, str]]:
    """Our entry points with their distribution; one name from two distributions fails."""
    seen: dict[str, tuple[md.EntryPoint, str]] = {}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = re.sub(r"[-_.]+", "-", ep.dist.name).lower() if ep.dist else "?"
        other = seen.setdefault(ep.name, (ep, dist))
        if other[1] != dist:  # the same distribution twice on sys.path is fine
            raise PluginError(
                f"two installed distributions declare the plugin {ep.name!r}: "
                f"{other[1]} ({other[0].value}) and {dist} ({ep.value}) — uninstall one"
            )
    return list(seen.values())


def _check_allowed(allowed: frozenset[str], entry_points: list[tuple[md.EntryPoint, str]]) -> None:
    """Every name in the allow-list must match an installed plugin or distribution."""
    installed = sorted({ep.name for ep, _ in entry_points} | {dist for _, dist in entry_points})
    unknown = sorted(allowed - set(installed))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, installed, n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        third_party = sorted({ep.name for ep, d in entry_points if d not in BUILTIN_DISTRIBUTIONS})
        raise PluginError(
            f"{PLUGINS_ENV} names plugin(s) that are not installed: {', '.join(hints)} — "
            f"installed third-party plugins: {', '.join(third_party) or 'none'}"
        )
