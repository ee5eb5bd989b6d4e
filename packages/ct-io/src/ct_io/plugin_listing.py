"""``ct-io plugins``: every registration, in a layout that stays readable at 80 columns.

One block per kind; per registration a line with its name and description, and an
indented line with the plugin, its distribution and its options. Lines wrap between
words only, so a name or an option is never cut in two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ct_io.hookspecs import KINDS
from ct_io.plugins import collect

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ct_io.plugins import CamtrapPluginManager


def plugin_rows(pm: CamtrapPluginManager | None = None) -> list[dict[str, Any]]:
    """One dict per registration: kind, name, plugin, distribution, description, options."""
    return [
        {
            "kind": kind,
            "name": reg.name,
            "plugin": reg.plugin,
            "distribution": reg.distribution,
            "description": reg.description,
            "options": [a.name for a in attrs.fields(reg.options)] if reg.options else [],
        }
        for kind in KINDS
        for reg in collect(kind, pm)
    ]


def render_plugins(rows: list[dict[str, Any]]) -> list[RenderableType]:
    """The rows as rich text blocks, one per kind."""
    from rich.padding import Padding
    from rich.text import Text

    out: list[RenderableType] = []
    for kind in dict.fromkeys(row["kind"] for row in rows):
        mine = [row for row in rows if row["kind"] == kind]
        plural = kind + ("es" if kind.endswith("s") else "s")
        out.append(Text(f"{plural} ({len(mine)})", style="bold underline"))
        for row in mine:
            line = Text(row["name"], style="bold")
            if row["description"]:
                line.append(f"  {row['description']}", style="not bold")
            details = f"from {row['plugin']} ({row['distribution']})"
            if row["options"]:
                details += "; options: " + ", ".join(row["options"])
            out.append(Padding(line, (0, 0, 0, 2)))
            out.append(Padding(Text(details, style="dim"), (0, 0, 0, 6)))
        out.append(Text(""))
    return out
