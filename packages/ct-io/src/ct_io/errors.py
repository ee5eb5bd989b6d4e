"""User-facing errors: each one prints as a single line that says what to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ct_io.problems import Problem


class CamtrapError(Exception):
    """Base class of every error the toolkit shows to a user as one line (no traceback)."""

    #: The console script's exit status (``ct_io.clitools``: 2, a usage or input error).
    exit_code: int = 2


class EmptyResultError(CamtrapError):
    """A run that would produce nothing (no row merged, every item dropped): exit 1, never
    an empty output with exit 0."""

    exit_code = 1


class FormatError(CamtrapError):
    """A file does not follow its format; ``problems`` lists every issue with its JSON path."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        first = self.problems[0] if self.problems else None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{source}: {first}{more}" if first else f"{source}: invalid")


class PluginError(CamtrapError):
    """A plugin is missing, duplicated, or implements a hook that does not exist."""


class UnsafePathError(CamtrapError):
    """A path from input data would escape the folder it must stay in."""
