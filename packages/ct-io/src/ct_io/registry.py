"""Named registrations collected from the ``ct_register_*`` hooks, with helpful lookups."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from attrs import frozen

from ct_io.errors import CamtrapError, PluginError
from ct_io.plugins import CamtrapPluginManager, get_plugin_manager


class PluginKind(enum.Enum):
    """The kinds of things plugins register, each with its hook."""

    DATA_SOURCE = "data source"
    DETECTOR = "detector"
    BACKBONE = "backbone"
    LOSS = "loss"
    LOGGER = "logger"

    @property
    def hook_name(self) -> str:
        return _HOOKS[self]


_HOOKS = {
    PluginKind.DATA_SOURCE: "ct_register_data_sources",
    PluginKind.DETECTOR: "ct_register_detectors",
    PluginKind.BACKBONE: "ct_register_backbones",
    PluginKind.LOSS: "ct_register_losses",
    PluginKind.LOGGER: "ct_register_loggers",
}


@frozen
class Registration:
    """One named thing a plugin provides."""

    kind: PluginKind
    name: str
    factory: Callable[..., Any]
    options: type | None
    description: str
    plugin: str
    distribution: str


class Registry:
    """All registrations of one kind, looked up by name."""

    def __init__(self, kind: PluginKind, entries: dict[str, Registration]) -> None:
        self.kind = kind
        self._entries = dict(sorted(entries.items()))

    def get(self, name: str) -> Registration:
        """The registration called ``name``; an unknown name suggests close matches."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" — did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(self._entries) or "none"
            raise PluginError(
                f"unknown {self.kind.value} {name!r}{hint} (known: {known}; `ct-io plugins` lists them)"
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def collect(kind: PluginKind, pm: CamtrapPluginManager | None = None) -> Registry:
    """Call every plugin's hook for ``kind`` and gather what they register (cached per manager).

    A plugin whose hook raises, registers a taken name, or passes something that is not a
    name / callable / attrs options class fails with a ``PluginError`` naming the plugin.
    """
    pm = pm or get_plugin_manager()
    cached = pm.registry_cache.get(kind.value)
    if isinstance(cached, Registry):
        return cached
    entries: dict[str, Registration] = {}
    hook = getattr(pm.hook, kind.hook_name)
    for impl in hook.get_hookimpls():  # registration order (pluggy calls them in reverse)
        registrar = _Registrar(
            kind, impl.plugin_name, pm.distribution_of(impl.plugin_name), entries
        )
        try:
            impl.function(register=registrar)
        except CamtrapError:
            raise
        except Exception as exc:  # a broken plugin must name itself
            raise PluginError(
                f"plugin {registrar.plugin!r} ({registrar.distribution}) failed in "
                f"{kind.hook_name}: {exc!r} — fix or uninstall it, or set CAMTRAP_PLUGINS= "
                "to load built-ins only"
            ) from exc
    registry = Registry(kind, entries)
    pm.registry_cache[kind.value] = registry
    return registry


class _Registrar:
    """The ``register`` callback one plugin receives for one kind."""

    def __init__(
        self, kind: PluginKind, plugin: str, distribution: str, entries: dict[str, Registration]
    ) -> None:
        self.kind = kind
        self.plugin = plugin
        self.distribution = distribution
        self.entries = entries

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        options: type | None = None,
        description: str = "",
    ) -> None:
        where = f"plugin {self.plugin!r} ({self.distribution}) registers {self.kind.value} {name!r}"
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise PluginError(
                f"plugin {self.plugin!r} ({self.distribution}): {self.kind.value} name {name!r} must be a non-empty string without surrounding spaces"
            )
        if not callable(factory):
            raise PluginError(f"{where}: factory {factory!r} is not callable")
        if options is not None and not (isinstance(options, type) and attrs.has(options)):
            raise PluginError(f"{where}: options must be an attrs class (or None), got {options!r}")
        if name in self.entries:
            other = self.entries[name]
            raise PluginError(
                f"{self.kind.value} {name!r} is registered twice: by plugin {other.plugin!r} "
                f"({other.distribution}) and by plugin {self.plugin!r} ({self.distribution}) — "
                "uninstall one, or restrict third-party plugins with CAMTRAP_PLUGINS"
            )
        self.entries[name] = Registration(
            self.kind, name, factory, options, str(description), self.plugin, self.distribution
        )
