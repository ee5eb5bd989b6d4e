"""Typed options for plugins and configs: cattrs with unknown keys rejected and one
line per problem, each with its path (``$.sources[0].bucket: expected str``)."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import BaseValidationError, CattrsError, ForbiddenExtraKeysError

from ct_io.errors import CamtrapError

T = TypeVar("T")


class ConfigError(CamtrapError):
    """Options or a config file that do not fit their schema; one line per problem."""

    def __init__(self, where: str, lines: list[str]) -> None:
        self.where = where
        self.lines = lines
        super().__init__(f"{where}: " + "; ".join(lines))


def make_converter() -> cattrs.Converter:
    """A converter that rejects unknown keys and understands paths."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(Path, lambda v, _: Path(v))
    conv.register_unstructure_hook(Path, str)
    conv.register_structure_hook_func(lambda t: t == list[str], _str_list)
    return conv


def _str_list(value: Any, _: Any) -> list[str]:
    """``list[str]`` options accept one bare string too (``-o taxa=rattus`` → ``["rattus"]``)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"expected a string or a list of strings, got {value!r}")
    return [str(v) for v in value]


converter = make_converter()


def structure(
    data: Any, cls: type[T], *, where: str = "options", conv: cattrs.Converter | None = None
) -> T:
    """Build ``cls`` from ``data`` or raise ``ConfigError`` listing every problem.

    Each line names the problem's path first: ``$.threads: expected int``,
    ``$.sources[0]: unknown key 'bukcet' — did you mean 'bucket'?``.
    """
    conv = conv or converter
    if attrs.has(cls) and not isinstance(data, Mapping):
        raise ConfigError(where, [f"$: expected a mapping of options, got {type(data).__name__}"])
    try:
        return conv.structure(data, cls)
    except (BaseValidationError, ForbiddenExtraKeysError) as exc:
        lines = cattrs.transform_error(exc, path="$", format_exception=_describe)
        raise ConfigError(where, [_path_first(line) for line in lines]) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(where, [f"$: {_describe(exc, None)}"]) from None


def _path_first(line: str) -> str:
    """cattrs writes ``description @ path``; we write ``path: description``."""
    description, sep, path = line.rpartition(" @ ")
    return f"{path}: {description}" if sep else line


def _describe(exc: BaseException, typ: Any) -> str:
    """One problem in words (the path is added by the caller)."""
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        parts = []
        for key in sorted(exc.extra_fields):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        noun = "key" if len(parts) == 1 else "keys"
        return f"unknown {noun} {', '.join(parts)} — known: {', '.join(known) or 'none'}"
    if isinstance(exc, KeyError):
        return "required option missing"
    if isinstance(exc, AttributeError) and str(exc).endswith(
        ("attribute 'items'", "attribute 'keys'")
    ):
        return "expected a mapping"
    if isinstance(exc, TypeError | ValueError | CattrsError) and typ is not None:
        got = str(exc).partition(" not in literal")[0] if " not in literal" in str(exc) else ""
        return f"expected {_type_name(typ)}" + (f", got {got!r}" if got else "")
    return str(exc) or type(exc).__name__


def _type_name(typ: Any) -> str:
    if get_origin(typ) is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(typ))
    if isinstance(typ, type) and issubclass(typ, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in typ)
    return getattr(typ, "__name__", None) or repr(typ).replace("typing.", "")


def parse_key_values(pairs: list[str]) -> dict[str, Any]:
    """``["bucket=x", "threads=8"]`` → dict; values parsed as JSON when they look like it."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CamtrapError(f"option {pair!r} is not KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
