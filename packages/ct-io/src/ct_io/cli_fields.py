"""Command-line options made from the fields of an attrs options class.

``@options_from(Cls, into="name")`` gives the decorated typer command one option per
field of ``Cls`` (its type, its default, the help in ``metadata={"help": ...}``), so a
field added to the class is an option at once. The command receives what was given as
one dict, ``name``: field name → value, ready for ``Cls(**values)`` or
``ct_io.options.structure``. Choices (``Literal`` or an Enum) become an Enum option.
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import typer

F = TypeVar("F", bound=Callable[..., Any])
#: Field types an option can hold as they are (``T | None`` of them too).
_PLAIN = (str, int, float, bool, Path)


def options_from(
    cls: type,
    *,
    into: str,
    skip: Collection[str] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
) -> Callable[[F], F]:
    """Add every field of attrs class ``cls`` (but ``skip``) to a command as an option.

    An option is named after its field (``key_field`` → ``--key-field``) unless ``flags``
    names it (``{"taxa": ("--taxon", "-t")}``); a ``bool`` field is a ``--x/--no-x`` pair
    unless ``flags`` gives a single flag; ``list[str]`` and ``tuple[str, ...]`` fields are
    repeatable. Options follow the command's own parameters, in field order. The
    command's parameter ``into`` receives the values; a repeatable option not given is
    left out, so the class's own default applies.
    """
    fields = [f for f in attrs.fields(attrs.resolve_types(cls)) if f.name not in skip]
    unknown = (set(skip) | set(flags or {})) - {f.name for f in attrs.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    options = {f.name: _Option.of(cls, f, tuple((flags or {}).get(f.name, ()))) for f in fields}

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != into]
        clash = {p.name for p in own} & set(options)
        if into not in signature.parameters or clash:
            raise TypeError(
                f"{command.__name__}: needs a parameter {into!r} and no other named like "
                f"a field of {cls.__name__} (clash: {', '.join(sorted(clash)) or 'none'})"
            )

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            given = {name: opt.value(kwargs.pop(name)) for name, opt in options.items()}
            values = {k: v for k, v in given.items() if v is not _LEFT_OUT}
            return command(**kwargs, **{into: values})

        params = [opt.parameter(name) for name, opt in options.items()]
        run.__signature__ = signature.replace(parameters=[*own, *params])  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def choices(name: str, values: Sequence[str]) -> type[enum.StrEnum]:
    """An Enum of strings for a choice option (``--cloud [azure|gcp|aws]``)."""
    return enum.StrEnum(name, {v: v for v in values})  # type: ignore[return-value]


_LEFT_OUT = object()


@attrs.frozen
class _Option:
    """How one field appears on the command line and comes back from it."""

    annotation: Any
    default: Any
    help: str
    flags: tuple[str, ...]
    repeatable: bool = False
    to_value: Callable[[Any], Any] | None = None  # a choice Enum member → the field's value

    @classmethod
    def of(cls, owner: type, field: attrs.Attribute[Any], flags: tuple[str, ...]) -> _Option:
        help_text = field.metadata.get("help")
        if not help_text:
            raise TypeError(f"{owner.__name__}.{field.name}: no metadata['help'] to show")
        typ, optional = _strip_none(field.type)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = None
        elif default is attrs.NOTHING:
            default = ...  # required
        if get_origin(typ) in (list, tuple) and get_args(typ)[0] is str:
            return cls(list[str] | None, None, help_text, flags, repeatable=True)
        if get_origin(typ) is Literal:
            enum_type = choices(f"{owner.__name__}_{field.name}", [str(v) for v in get_args(typ)])
            default = enum_type(default) if isinstance(default, str) else default
            return cls(
                enum_type | None if optional else enum_type,
                default,
                help_text,
                flags,
                to_value=lambda member: member.value,
            )
        if typ in _PLAIN or (isinstance(typ, type) and issubclass(typ, enum.Enum)):
            return cls(typ | None if optional else typ, default, help_text, flags)
        raise TypeError(
            f"{owner.__name__}.{field.name}: {field.type} has no command-line form; skip it"
        )

    def parameter(self, name: str) -> inspect.Parameter:
        info = typer.Option(*self.flags, help=self.help)
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=self.default,
            annotation=Annotated[self.annotation, info],
        )

    def value(self, given: Any) -> Any:
        if self.repeatable:
            return list(given) if given else _LEFT_OUT
        if given is not None and self.to_value is not None:
            return self.to_value(given)
        return given


def _strip_none(typ: Any) -> tuple[Any, bool]:
    """``T | None`` → ``(T, True)``; anything else → ``(typ, False)``."""
    if get_origin(typ) in (Union, types.UnionType):
        args = [a for a in get_args(typ) if a is not type(None)]
        if len(args) == 1 and len(get_args(typ)) == 2:
            return args[0], True
    return typ, False
