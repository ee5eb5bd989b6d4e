"""Named registrations collected from the ``ct_register_*`` hooks, with helpful lookups."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterator
from typing import Any

from attrs import frozen

from ct_io.errors import PluginError
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
    """Call every plugin's hook for ``kind`` and gather what they register (cached per manager)."""
    pm = pm or get_plugin_manager()
    cached = pm.registry_cache.get(kind.value)
    if isinstance(cached, Registry):
        return cached
    entries: dict[str, Registration] = {}
    hook = getattr(pm.hook, kind.hook_name)
    for impl in reversed(hook.get_hookimpls()):  # registration order
        plugin = impl.plugin_name
        distribution = pm.distributions.get(plugin, "?")

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            options: type | None = None,
            description: str = "",
            _plugin: str = plugin,
            _dist: str = distribution,
        ) -> None:
            if name in entries:
                other = entries[name]
                raise PluginError(
                    f"{kind.value} {name!r} is registered twice: by plugin {other.plugin!r} "
                    f"({other.distribution}) and by plugin {_plugin!r} ({_dist}) — uninstall one, "
                    "or restrict third-party plugins with CAMTRAP_PLUGINS"
                )
            entries[name] = Registration(kind, name, factory, options, description, _plugin, _dist)

        impl.function(register=register)
    registry = Registry(kind, entries)
    pm.registry_cache[kind.value] = registry
    return registry
