"""Validation problems: a JSON path, what is wrong, and a hint on how to fix it."""

from __future__ import annotations

from attrs import frozen


@frozen
class Problem:
    """One validation problem, e.g. ``images[12].detections[3].bbox: width 1.2 > 1``."""

    path: str
    message: str
    hint: str = ""
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        hint = f" — {self.hint}" if self.hint else ""
        return f"{self.path}: {self.message}{hint}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def errors_only(problems: list[Problem]) -> list[Problem]:
    """The problems that make a file invalid (warnings dropped)."""
    return [p for p in problems if p.is_error]
