"""Registrations collected from the ``ct_register_*`` hooks: one test per hook, lookups
with suggestions, duplicates naming both plugins, and bad ``register`` calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from ct_io import hookimpl
from ct_io.errors import PluginError
from ct_io.hookspecs import KINDS, Register
from ct_io.options import ConfigError
from ct_io.plugins import (
    CamtrapPluginManager,
    Registration,
    Registry,
    collect,
    make_plugin_manager,
)


@attrs.frozen
class ThresholdOptions:
    threshold: float = 0.2


def factory(*args: Any) -> tuple[Any, ...]:
    return args


def empty_pm() -> CamtrapPluginManager:
    return make_plugin_manager(load_entry_points=False)


def plugin_from(**hooks: Callable[[Register], None]) -> object:
    """A throwaway plugin object whose hooks are the given functions."""
    namespace = {name: staticmethod(hookimpl(fn)) for name, fn in hooks.items()}
    return type("ThrowawayPlugin", (), namespace)()


# ---------------------------------------------------------------- one test per hook


def test_every_hook_has_a_kind() -> None:
    hooks = [name for name in dir(empty_pm().hook) if not name.startswith("_")]
    assert sorted(KINDS.values()) == sorted(hooks)


def test_ct_register_data_sources() -> None:
    class Plugin:
        @hookimpl
        def ct_register_data_sources(self, register: Register) -> None:
            register("folder", factory, options=ThresholdOptions, description="Images in folders")

    pm = empty_pm()
    pm.register_plugin(Plugin(), "sources", distribution="camtrap-sources")
    reg = collect("data source", pm).get("folder")
    assert reg == Registration(
        "data source",
        "folder",
        factory,
        ThresholdOptions,
        "Images in folders",
        "sources",
        "camtrap-sources",
    )


def test_ct_register_detectors() -> None:
    class Plugin:
        @hookimpl
        def ct_register_detectors(self, register: Register) -> None:
            register("mdv5a", factory, options=ThresholdOptions)
            register("mdv5b", factory)

    pm = empty_pm()
    pm.register_plugin(Plugin(), "detectors")
    detectors = collect("detector", pm)
    assert detectors.names() == ["mdv5a", "mdv5b"]
    assert detectors.get("mdv5b").options is None
    assert detectors.get("mdv5a").factory("x") == ("x",)


def test_ct_register_backbones() -> None:
    class Plugin:
        @hookimpl
        def ct_register_backbones(self, register: Register) -> None:
            register("resnet18", factory, description="ResNet-18")

    pm = empty_pm()
    pm.register_plugin(Plugin(), "backbones")
    assert [r.description for r in collect("backbone", pm)] == ["ResNet-18"]
    assert len(collect("loss", pm)) == 0, "kinds do not leak into each other"


def test_ct_register_losses() -> None:
    class Plugin:
        @hookimpl
        def ct_register_losses(self, register: Register) -> None:
            register("focal", factory)
            register("ce", factory)

    pm = empty_pm()
    pm.register_plugin(Plugin(), "losses")
    losses = collect("loss", pm)
    assert losses.names() == ["ce", "focal"], "listed sorted by name"
    assert "ce" in losses and "dice" not in losses


def test_ct_register_loggers() -> None:
    class Plugin:
        @hookimpl
        def ct_register_loggers(self, register: Register) -> None:
            register("console", factory)

    class Other:
        @hookimpl
        def ct_register_losses(self, register: Register) -> None:
            register("console", factory)  # the same name in another kind is fine

    pm = empty_pm()
    pm.register_plugin(Plugin(), "loggers")
    pm.register_plugin(Other(), "other")
    assert collect("logger", pm).get("console").plugin == "loggers"
    assert collect("loss", pm).get("console").plugin == "other"


def test_ct_register_engines(tmp_path: Path) -> None:
    """An engine plugin is found by name, built with its options, and runs a sharded job."""
    from ct_io.engines import EngineOptions, EngineReport, JobSteps, get_engine, make_shards

    class Serial:
        name = "serial"

        def __init__(self, options: EngineOptions) -> None:
            self.options = options

        def run(self, steps: JobSteps, shards: Any, progress: Any = None) -> EngineReport:
            pending = steps.pending(shards)
            for shard in pending:
                steps.run_shard(shard)
            return EngineReport(self.name, len(pending), len(shards) - len(pending))

    class Plugin:
        @hookimpl
        def ct_register_engines(self, register: Register) -> None:
            register("serial", Serial, options=EngineOptions)

    pm = empty_pm()
    pm.register_plugin(Plugin(), "engines")
    engine = get_engine("serial", {"address": "auto", "workers": 3}, pm)
    assert engine.options == EngineOptions(address="auto", workers=3)  # type: ignore[attr-defined]
    steps = JobSteps("square", tmp_path, _squares)
    shards = make_shards(list(range(7)), 3)
    assert engine.run(steps, shards[:1]) == EngineReport("serial", 1, 0)
    assert engine.run(steps, shards) == EngineReport("serial", 2, 1), "finished shards skipped"
    from ct_io.engines import read_shards

    assert [r for _, r in read_shards(steps, shards)] == [[0, 1, 4], [9, 16, 25], [36]]


def test_builtin_engines_are_listed() -> None:
    engines = collect("engine", make_plugin_manager())
    assert {"local", "ray"} <= set(engines.names())


def _squares(items: tuple[int, ...]) -> list[int]:
    return [i * i for i in items]


# ---------------------------------------------------------------- lookups


def test_unknown_name_suggests_close_matches() -> None:
    pm = empty_pm()

    def backbones(register: Register) -> None:
        for name in ("efficientnet_b0", "efficientnet_b3", "resnet50"):
            register(name, factory)

    pm.register_plugin(plugin_from(ct_register_backbones=backbones), "b")
    with pytest.raises(PluginError) as info:
        collect("backbone", pm).get("efficientnet-b0")
    message = str(info.value)
    assert message.startswith(
        "unknown backbone 'efficientnet-b0' — did you mean 'efficientnet_b0', 'efficientnet_b3'?"
    )
    assert "known: efficientnet_b0, efficientnet_b3, resnet50" in message
    assert "ct-io plugins" in message


def test_unknown_name_without_close_match_lists_what_is_known() -> None:
    registry = Registry("loss", {})
    with pytest.raises(PluginError) as info:
        registry.get("focal")
    assert "did you mean" not in str(info.value)
    assert "known: none" in str(info.value)


def test_create_passes_validated_options_to_factories_that_take_them() -> None:
    def losses(register: Register) -> None:
        register("tuned", factory, options=ThresholdOptions)
        register("plain", factory)

    pm = empty_pm()
    pm.register_plugin(plugin_from(ct_register_losses=losses), "p")
    tuned, plain = collect("loss", pm).get("tuned"), collect("loss", pm).get("plain")
    assert tuned.create(3, [1, 2], options={"threshold": 0.5}) == (3, [1, 2], ThresholdOptions(0.5))
    assert tuned.create(3, [1, 2]) == (3, [1, 2], ThresholdOptions())
    assert plain.create(3, [1, 2]) == (3, [1, 2]), "no options argument when it takes none"
    with pytest.raises(ConfigError, match=r"loss 'plain' options: \$: takes no options, got x"):
        plain.create(3, [1, 2], options={"x": 1})
    with pytest.raises(ConfigError, match="unknown key 'treshold'"):
        tuned.create(3, [1, 2], options={"treshold": 1})


# ---------------------------------------------------------------- duplicates and bad calls


def test_duplicate_name_names_both_plugins_and_distributions() -> None:
    pm = empty_pm()

    def first(register: Register) -> None:
        register("focal", factory)

    def second(register: Register) -> None:
        register("focal", factory)

    pm.register_plugin(plugin_from(ct_register_losses=first), "first", distribution="camtrap-first")
    pm.register_plugin(
        plugin_from(ct_register_losses=second), "second", distribution="camtrap-second"
    )
    with pytest.raises(PluginError) as info:
        collect("loss", pm)
    assert str(info.value).startswith(
        "loss 'focal' is registered twice: by plugin 'first' (camtrap-first) "
        "and by plugin 'second' (camtrap-second)"
    )
    pm.unregister_plugin("second")
    assert collect("loss", pm).get("focal").plugin == "first"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda register: register("", factory), "name '' must be a non-empty string"),
        (
            lambda register: register(" padded ", factory),
            "name ' padded ' must be a non-empty string",
        ),
        (lambda register: register(3, factory), "name 3 must be a non-empty string"),
        (
            lambda register: register("x", "not callable"),
            "registers loss 'x': factory 'not callable' is not callable",
        ),
        (
            lambda register: register("x", factory, options=dict),
            "options must be an attrs class (or None)",
        ),
        (
            lambda register: register("x", factory, options=ThresholdOptions()),
            "options must be an attrs class",
        ),
        (
            lambda register: register("x", factory, ThresholdOptions),
            "failed in ct_register_losses: TypeError",
        ),
    ],
)
def test_bad_register_calls_name_the_plugin(
    call: Callable[[Register], None], expected: str
) -> None:
    pm = empty_pm()
    pm.register_plugin(
        plugin_from(ct_register_losses=call), "sloppy", distribution="camtrap-sloppy"
    )
    with pytest.raises(PluginError) as info:
        collect("loss", pm)
    assert "plugin 'sloppy' (camtrap-sloppy)" in str(info.value)
    assert expected in str(info.value)


# ---------------------------------------------------------------- caching


def test_collect_is_cached_until_plugins_change() -> None:
    pm = empty_pm()
    calls: list[str] = []

    def losses(register: Register) -> None:
        calls.append("called")
        register("ce", factory)

    pm.register_plugin(plugin_from(ct_register_losses=losses), "a")
    first = collect("loss", pm)
    assert collect("loss", pm) is first
    assert calls == ["called"]

    def more(register: Register) -> None:
        register("focal", factory)

    pm.register_plugin(plugin_from(ct_register_losses=more), "b")
    assert collect("loss", pm).names() == ["ce", "focal"]
    assert calls == ["called", "called"]


def test_a_failed_collect_is_not_cached() -> None:
    pm = empty_pm()
    state = {"fail": True}

    def flaky(register: Register) -> None:
        if state["fail"]:
            raise OSError("disk on fire")
        register("ce", factory)

    pm.register_plugin(plugin_from(ct_register_losses=flaky), "flaky")
    with pytest.raises(PluginError, match="disk on fire"):
        collect("loss", pm)
    state["fail"] = False
    assert collect("loss", pm).names() == ["ce"]
