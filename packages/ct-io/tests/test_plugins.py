"""The plugin manager: entry points, CAMTRAP_PLUGINS, throwaway plugins, loud failures.

Third-party plugins are real installed distributions: each test writes a
``<name>-<version>.dist-info`` folder (METADATA + entry_points.txt) and the plugin module
into a temporary folder on ``sys.path``, which is exactly what ``importlib.metadata`` and
``pip install`` produce.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ct_io import hookimpl
from ct_io.errors import PluginError
from ct_io.hookspecs import KINDS, Register
from ct_io.plugins import (
    BUILTIN_DISTRIBUTIONS,
    PLUGINS_ENV,
    CamtrapPluginManager,
    allowed_plugins_from_env,
    check_pending,
    collect,
    get_plugin_manager,
    make_plugin_manager,
)

LOSS_PLUGIN = """
from ct_io import hookimpl

@hookimpl
def ct_register_losses(register):
    register("{name}", lambda num_classes, class_counts, options: None, description="test loss")
"""

MakeDist = Callable[..., Path]


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeDist]:
    """Install a tiny distribution declaring ``camtrap.plugins`` entry points.

    ``make_dist("camtrap-foo", {"foo": "foo_plugin"}, {"foo_plugin": "<source>"})``
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(dist: str, entry_points: dict[str, str], sources: dict[str, str]) -> Path:
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[camtrap.plugins]\n{lines}")
        for module, source in sources.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        importlib.invalidate_caches()
        return site

    yield make
    for module in modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


def loss_names(pm: CamtrapPluginManager) -> dict[str, tuple[str, str]]:
    """Losses from non-built-in plugins (ct-train's built-in losses may be installed too)."""
    return {
        r.name: (r.plugin, r.distribution)
        for r in collect("loss", pm)
        if r.distribution not in BUILTIN_DISTRIBUTIONS
    }


# ---------------------------------------------------------------- built-ins and throwaways


def test_builtins_load_through_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    pm = make_plugin_manager()
    assert pm.has_plugin("ct_io")
    assert pm.distributions["ct_io"] == "ct-io"
    assert pm.get_plugin("ct_io").__name__ == "ct_io.builtin_plugins"


def test_get_plugin_manager_is_built_once() -> None:
    assert get_plugin_manager() is get_plugin_manager()


def test_throwaway_plugin_is_registered_and_unregistered() -> None:
    pm = make_plugin_manager(load_entry_points=False)

    class Throwaway:
        @hookimpl
        def ct_register_losses(self, register: Register) -> None:
            register("poly1", lambda *a: None, description="Poly-1")

    assert "poly1" not in collect("loss", pm)
    pm.register_plugin(Throwaway(), "throwaway")
    assert loss_names(pm) == {"poly1": ("throwaway", "?")}
    pm.unregister_plugin("throwaway")
    assert loss_names(pm) == {}


def test_registering_a_taken_name_fails() -> None:
    pm = make_plugin_manager(load_entry_points=False)

    class A:
        @hookimpl
        def ct_register_losses(self, register: Register) -> None:
            pass

    pm.register_plugin(A(), "same")
    with pytest.raises(PluginError, match="cannot register plugin 'same'"):
        pm.register_plugin(A(), "same")


def test_unregistering_an_unknown_plugin_fails() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    with pytest.raises(PluginError, match="no plugin named 'ghost'"):
        pm.unregister_plugin("ghost")


# ---------------------------------------------------------------- hooks that do not exist


def test_misspelled_hook_fails_loudly_with_known_hooks() -> None:
    pm = make_plugin_manager(load_entry_points=False)

    class Typo:
        @hookimpl
        def ct_register_backbone(self, register: Register) -> None:
            register("resnet", lambda *a: None)

    with pytest.raises(PluginError) as info:
        pm.register_plugin(Typo(), "typo", distribution="camtrap-typo")
    message = str(info.value)
    assert "plugin 'typo' (camtrap-typo) implements unknown hook 'ct_register_backbone'" in message
    assert "did you mean 'ct_register_backbones'?" in message
    for hook in KINDS.values():
        assert hook in message
    assert "\n" not in message
    assert not pm.has_plugin("typo"), "a rejected plugin must not stay registered"


def test_check_pending_catches_plugins_registered_directly_with_pluggy() -> None:
    pm = make_plugin_manager(load_entry_points=False)

    class Typo:
        @hookimpl
        def ct_register_los(self, register: Register) -> None:
            pass

    pm.register(Typo(), name="raw")  # pluggy's own register does not check
    with pytest.raises(
        PluginError, match=r"unknown hook 'ct_register_los' — did you mean 'ct_register_losses'"
    ):
        check_pending(pm)


def test_unrelated_unknown_hook_lists_known_hooks_without_a_guess() -> None:
    pm = make_plugin_manager(load_entry_points=False)

    class Odd:
        @hookimpl
        def make_sandwiches(self, register: Register) -> None:
            pass

    with pytest.raises(PluginError) as info:
        pm.register_plugin(Odd(), "odd")
    assert "did you mean" not in str(info.value)
    assert "known hooks: ct_register_data_sources" in str(info.value)


def test_hook_with_wrong_argument_names_fails_in_one_line() -> None:
    pm = make_plugin_manager(load_entry_points=False)

    class WrongArgs:
        @hookimpl
        def ct_register_losses(self, reg: Register) -> None:
            pass

    with pytest.raises(PluginError) as info:
        pm.register_plugin(WrongArgs(), "wrong", distribution="camtrap-wrong")
    message = str(info.value)
    assert message.startswith("plugin 'wrong' (camtrap-wrong) is invalid")
    assert "{'reg'}" in message
    assert "\n" not in message


# ---------------------------------------------------------------- third-party entry points


def test_third_party_plugin_loads_with_its_distribution(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    make_dist(
        "camtrap-foo", {"foo": "foo_plugin"}, {"foo_plugin": LOSS_PLUGIN.format(name="foo-loss")}
    )
    pm = make_plugin_manager()
    assert pm.has_plugin("ct_io"), "built-ins still load"
    assert loss_names(pm)["foo-loss"] == ("foo", "camtrap-foo")


@pytest.mark.parametrize(
    ("env", "loaded"),
    [
        (None, {"foo-loss", "bar-loss"}),  # unset: everything
        ("", set()),  # empty: built-ins only
        ("foo", {"foo-loss"}),  # entry-point name
        ("camtrap-bar", {"bar-loss"}),  # distribution name
        (" foo , bar ,", {"foo-loss", "bar-loss"}),  # spaces and trailing commas
    ],
)
def test_camtrap_plugins_restricts_third_party_plugins(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, env: str | None, loaded: set[str]
) -> None:
    make_dist(
        "camtrap-foo", {"foo": "foo_plugin"}, {"foo_plugin": LOSS_PLUGIN.format(name="foo-loss")}
    )
    make_dist(
        "camtrap-bar", {"bar": "bar_plugin"}, {"bar_plugin": LOSS_PLUGIN.format(name="bar-loss")}
    )
    if env is None:
        monkeypatch.delenv(PLUGINS_ENV, raising=False)
    else:
        monkeypatch.setenv(PLUGINS_ENV, env)
    pm = make_plugin_manager()
    assert set(loss_names(pm)) == loaded
    assert pm.has_plugin("ct_io"), "built-ins always load"


def test_allowed_plugins_from_env_semantics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    assert allowed_plugins_from_env() is None
    monkeypatch.setenv(PLUGINS_ENV, "")
    assert allowed_plugins_from_env() == frozenset()
    monkeypatch.setenv(PLUGINS_ENV, "a, b,,")
    assert allowed_plugins_from_env() == frozenset({"a", "b"})


def test_allow_argument_overrides_the_environment(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "camtrap-foo", {"foo": "foo_plugin"}, {"foo_plugin": LOSS_PLUGIN.format(name="foo-loss")}
    )
    monkeypatch.setenv(PLUGINS_ENV, "")
    assert set(loss_names(make_plugin_manager(allow=["foo"]))) == {"foo-loss"}
    assert set(loss_names(make_plugin_manager(use_env=False))) == {"foo-loss"}
    assert set(loss_names(make_plugin_manager())) == set()


def test_unknown_name_in_camtrap_plugins_fails_with_a_suggestion(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "camtrap-foo", {"foo_loss": "foo_plugin"}, {"foo_plugin": LOSS_PLUGIN.format(name="x")}
    )
    monkeypatch.setenv(PLUGINS_ENV, "foo_los")
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    message = str(info.value)
    assert (
        "CAMTRAP_PLUGINS names plugin(s) that are not installed: 'foo_los' (did you mean 'foo_loss'?)"
        in message
    )
    assert "installed third-party plugins: foo_loss" in message


def test_broken_plugin_import_names_the_plugin(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    make_dist(
        "camtrap-broken",
        {"broken": "broken_plugin"},
        {"broken_plugin": "import not_a_real_module_xyz\n"},
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    message = str(info.value)
    assert message.startswith("plugin 'broken' (camtrap-broken: broken_plugin) failed to import")
    assert "not_a_real_module_xyz" in message
    assert "CAMTRAP_PLUGINS=" in message
    # the way out the message suggests works: built-ins only
    monkeypatch.setenv(PLUGINS_ENV, "")
    assert make_plugin_manager().has_plugin("ct_io")


def test_plugin_whose_hook_raises_is_named(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    source = """
    from ct_io import hookimpl

    @hookimpl
    def ct_register_detectors(register):
        import not_installed_dependency_xyz  # lazy import of an optional dependency
    """
    make_dist("camtrap-lazy", {"lazy": "lazy_plugin"}, {"lazy_plugin": source})
    pm = make_plugin_manager()
    with pytest.raises(PluginError) as info:
        collect("detector", pm)
    assert str(info.value).startswith(
        "plugin 'lazy' (camtrap-lazy) failed in ct_register_detectors"
    )
    assert "not_installed_dependency_xyz" in str(info.value)


def test_misspelled_hook_in_an_installed_plugin_fails_at_load(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    source = """
    from ct_io import hookimpl

    @hookimpl
    def ct_register_logger(register):
        pass
    """
    make_dist("camtrap-typo", {"typo": "typo_plugin"}, {"typo_plugin": source})
    with pytest.raises(
        PluginError,
        match=r"plugin 'typo' \(camtrap-typo\) implements unknown hook 'ct_register_logger' — did you mean 'ct_register_loggers'",
    ):
        make_plugin_manager()


def test_two_distributions_declaring_the_same_plugin_name_fail(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    make_dist(
        "camtrap-one", {"shared": "one_plugin"}, {"one_plugin": LOSS_PLUGIN.format(name="one")}
    )
    make_dist(
        "camtrap-two", {"shared": "two_plugin"}, {"two_plugin": LOSS_PLUGIN.format(name="two")}
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    message = str(info.value)
    assert "'shared'" in message
    assert "camtrap-one (one_plugin)" in message
    assert "camtrap-two (two_plugin)" in message


def test_same_loss_from_two_installed_plugins_names_both_distributions(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    make_dist("camtrap-one", {"one": "one_plugin"}, {"one_plugin": LOSS_PLUGIN.format(name="twin")})
    make_dist("camtrap-two", {"two": "two_plugin"}, {"two_plugin": LOSS_PLUGIN.format(name="twin")})
    pm = make_plugin_manager()
    with pytest.raises(PluginError) as info:
        collect("loss", pm)
    message = str(info.value)
    assert "loss 'twin' is registered twice" in message
    assert "plugin 'one' (camtrap-one)" in message
    assert "plugin 'two' (camtrap-two)" in message
    monkeypatch.setenv(PLUGINS_ENV, "one")  # the way out the message suggests
    assert loss_names(make_plugin_manager()) == {"twin": ("one", "camtrap-one")}


# ---------------------------------------------------------------- `ct-io plugins`


def ct_io(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ct-io`` console script's code in a fresh interpreter."""
    code = "import sys; from ct_io.cli import main; sys.argv[0] = 'ct-io'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


def plugin_env(site: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def test_ct_io_plugins_lists_registrations_with_plugin_and_distribution(
    make_dist: MakeDist,
) -> None:
    source = """
    import attrs
    from ct_io import hookimpl

    @attrs.frozen
    class FolderOptions:
        root: str
        recursive: bool = True

    @hookimpl
    def ct_register_data_sources(register):
        register("my-folder", lambda options: None, options=FolderOptions, description="Images from a folder")

    @hookimpl
    def ct_register_loggers(register):
        register("my-logger", lambda run_dir, config, options: None, description="Logs somewhere")
    """
    site = make_dist("camtrap-mine", {"mine": "mine_plugin"}, {"mine_plugin": source})

    table = ct_io("plugins", env=plugin_env(site))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    at = [i for i, line in enumerate(lines) if "my-folder" in line or "my-logger" in line]
    assert len(at) == 2
    details = [lines[i + 1] for i in at]  # the indented line under each name
    assert all("from mine (camtrap-mine)" in d for d in details)
    assert "options: root, recursive" in details[0] + details[1]

    listed = ct_io("plugins", "--json", env=plugin_env(site))
    assert listed.returncode == 0, listed.stderr
    by_name = {row["name"]: row for row in json.loads(listed.stdout)}
    assert by_name["my-folder"] == {
        "kind": "data source",
        "name": "my-folder",
        "plugin": "mine",
        "distribution": "camtrap-mine",
        "description": "Images from a folder",
        "options": ["root", "recursive"],
    }
    assert by_name["my-logger"]["kind"] == "logger"
    assert by_name["demo"]["distribution"] == "ct-io", "built-ins are listed too"

    hidden = ct_io("plugins", "--json", env=plugin_env(site, CAMTRAP_PLUGINS=""))
    assert hidden.returncode == 0, hidden.stderr
    assert {row["distribution"] for row in json.loads(hidden.stdout)} <= BUILTIN_DISTRIBUTIONS


def test_ct_io_plugins_reports_a_broken_plugin_in_one_line(make_dist: MakeDist) -> None:
    site = make_dist(
        "camtrap-broken",
        {"broken": "broken_plugin"},
        {"broken_plugin": "raise RuntimeError('boom')\n"},
    )
    result = ct_io("plugins", env=plugin_env(site))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert (
        "plugin 'broken' (camtrap-broken: broken_plugin) failed to import: RuntimeError('boom')"
        in lines[0]
    )


def test_plugins_listing_stays_readable_at_80_columns() -> None:
    """No name, distribution or option is cut in two by the layout (issue 15 item 12)."""
    import re

    from typer.testing import CliRunner

    from ct_io.cli import app
    from ct_io.plugin_listing import plugin_rows

    result = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    words = {w for line in lines for w in re.split(r"[\s,;()]+", line) if w}
    for row in plugin_rows():
        for token in (row["name"], row["distribution"], *row["options"]):
            assert token in words, f"{token!r} is cut or missing"
