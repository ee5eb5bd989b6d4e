"""Typed options for plugins and configs: cattrs with unknown keys rejected and one
line per problem, each with its path (``$.sources[0].bucket: expected str``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.v import format_exception

from ct_io.errors import CamtrapError
from ct_io.registry import Registration

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
    return conv


converter = make_converter()


def structure(data: Any, cls: type[T], *, where: str = "options", conv: cattrs.Converter | None = None) -> T:
    """Build ``cls`` from ``data`` or raise ``ConfigError`` listing every problem."""
    conv = conv or converter
    try:
        return conv.structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        raise ConfigError(where, cattrs.transform_error(exc, path="$", format_exception=_format_exception)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(where, [f"$: {exc}"]) from None


def _format_exception(exc: BaseException, type_: type | None) -> str:
    """cattrs' wording, plus the validator's own message (which names the field and limit)."""
    base = format_exception(exc, type_)
    if isinstance(exc, ValueError) and str(exc) and str(exc) not in base:
        return f"{base}: {exc}"
    return base


def build_options(reg: Registration, raw: Mapping[str, Any]) -> Any:
    """Options for a registered plugin thing, validated against its options class."""
    where = f"{reg.kind.value} {reg.name!r} options"
    if reg.options is None:
        if raw:
            raise ConfigError(where, [f"$: takes no options, got {', '.join(raw)}"])
        return None
    return structure(dict(raw), reg.options, where=where)


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
