"""Options generated from attrs options classes (``ct_io.cli_fields``)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
import typer
from typer.testing import CliRunner

from ct_io.cli import app as ct_io_app
from ct_io.cli_fields import options_from
from ct_io.clitools import make_app
from ct_io.source_options import AnimlOptions, FolderOptions, LilaOptions


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


@attrs.define(kw_only=True)
class Opts:
    name: str = attrs.field(metadata={"help": "A name."})
    count: int = attrs.field(default=3, metadata={"help": "How many."})
    mode: Literal["fast", "slow"] = attrs.field(default="fast", metadata={"help": "Speed."})
    tags: list[str] = attrs.field(factory=list, metadata={"help": "A tag (repeatable)."})
    strict: bool = attrs.field(default=False, metadata={"help": "Be strict."})
    where: Path | None = attrs.field(default=None, metadata={"help": "A folder."})
    colour: Colour = attrs.field(default=Colour.RED, metadata={"help": "A colour."})


def _app(cls: type, **kwargs: Any) -> tuple[typer.Typer, list[dict[str, Any]]]:
    """An app with one command taking ``cls``'s options; what the command got is recorded."""
    got: list[dict[str, Any]] = []
    app = make_app("test")

    @app.command()
    @options_from(cls, into="opts", **kwargs)
    def go(out: Path, *, opts: dict[str, Any]) -> None:
        got.append({"out": out, **opts})

    @app.command()
    def other() -> None:  # a second command keeps `go` a subcommand
        pass

    return app, got


def _params(app: typer.Typer, command: str) -> dict[str, Any]:
    group = typer.main.get_command(app)
    cmd = group.get_command(group.make_context("t", ["--help"], resilient_parsing=True), command)  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params}


def test_every_field_is_an_option_with_its_type_default_and_help() -> None:
    app, _ = _app(Opts)
    params = _params(app, "go")
    assert list(params) == ["out", *(f.name for f in attrs.fields(Opts))]
    assert params["name"].required and params["name"].opts == ["--name"]
    assert params["count"].default == 3 and params["count"].help == "How many."
    shown = CliRunner().invoke(app, ["go", "--help"], terminal_width=200).output
    assert "fast|slow" in shown and "red|blue" in shown and "How many." in shown
    assert params["tags"].multiple
    assert params["strict"].opts == ["--strict"] and params["strict"].secondary_opts == [
        "--no-strict"
    ]


def test_the_command_gets_plain_values_and_class_defaults() -> None:
    app, got = _app(Opts)
    result = CliRunner().invoke(app, ["go", "o", "--name", "x", "--mode", "slow"])
    assert result.exit_code == 0, result.output
    # the repeatable option was not given: left out, so the class's factory applies
    assert got == [
        {
            "out": Path("o"),
            "name": "x",
            "count": 3,
            "mode": "slow",
            "strict": False,
            "where": None,
            "colour": Colour.RED,
        }
    ]
    assert type(got[0]["mode"]) is str  # a Literal field gets a str, not the choice Enum
    assert Opts(**{k: v for k, v in got[0].items() if k != "out"}).mode == "slow"
    result = CliRunner().invoke(app, ["go", "o", "--name", "x", "--tags", "a", "--tags", "b"])
    assert result.exit_code == 0 and got[-1]["tags"] == ["a", "b"]


def test_a_bad_choice_is_a_usage_error() -> None:
    app, got = _app(Opts)
    result = CliRunner().invoke(app, ["go", "o", "--name", "x", "--mode", "medium"])
    assert result.exit_code == 2 and "medium" in result.output and not got


def test_flags_rename_and_skip_leaves_out() -> None:
    app, got = _app(Opts, skip=("where", "colour"), flags={"tags": ("--tag", "-t")})
    params = _params(app, "go")
    assert "where" not in params and "colour" not in params
    assert params["tags"].opts == ["--tag", "-t"]
    result = CliRunner().invoke(app, ["go", "o", "--name", "x", "-t", "a"])
    assert result.exit_code == 0 and got[0]["tags"] == ["a"] and "where" not in got[0]


def test_a_field_added_to_the_class_is_an_option() -> None:
    @attrs.define(kw_only=True)
    class More(Opts):
        extra: float = attrs.field(default=0.5, metadata={"help": "Something new."})

    app, got = _app(More)
    assert _params(app, "go")["extra"].opts == ["--extra"]
    CliRunner().invoke(app, ["go", "o", "--name", "x", "--extra", "2"])
    assert got[0]["extra"] == 2.0


def test_mistakes_fail_when_the_command_is_declared() -> None:
    @attrs.define
    class NoHelp:
        x: int = 1

    @attrs.define
    class Pair:
        xy: tuple[int, int] = attrs.field(default=(0, 0), metadata={"help": "Two ints."})

    with pytest.raises(TypeError, match=r"NoHelp\.x: no metadata\['help'\]"):
        options_from(NoHelp, into="o")
    with pytest.raises(TypeError, match=r"Pair\.xy: .* skip it"):
        options_from(Pair, into="o")
    with pytest.raises(TypeError, match="has no field nope"):
        options_from(Opts, into="o", skip=("nope",))

    def clashes(name: str, *, o: dict[str, Any]) -> None: ...

    with pytest.raises(TypeError, match="clash: name"):
        options_from(Opts, into="o")(clashes)


@pytest.mark.parametrize(
    ("path", "cls", "renamed", "left_out"),
    [
        (("animl", "download"), AnimlOptions, {}, {"cct"}),
        (
            ("lila", "download"),
            LilaOptions,
            {
                "taxa": "--taxon",
                "labels": "--label",
                "locations": "--location",
                "locations_of_taxa": "--at-locations",
            },
            {"dataset", "metadata"},
        ),
        (("folder",), FolderOptions, {"extensions": "--extension"}, {"root"}),
    ],
)
def test_source_commands_take_every_field_of_their_options_class(
    path: tuple[str, ...], cls: type, renamed: dict[str, str], left_out: set[str]
) -> None:
    cmd: Any = typer.main.get_command(ct_io_app)
    for name in path:
        cmd = cmd.get_command(cmd.make_context("ct-io", ["--help"], resilient_parsing=True), name)
    opts = {p.name: p for p in cmd.params}
    for field in attrs.fields(cls):
        if field.name in left_out:
            continue
        flag = renamed.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in opts[field.name].opts, (field.name, opts[field.name].opts)
        assert opts[field.name].help == field.metadata["help"]
