"""Every ``ct-infer`` command line in docs/infer.md names a real command and real options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from ct_infer.cli import app

DOC = Path(__file__).resolve().parents[3] / "docs" / "infer.md"


def _command_lines() -> list[str]:
    if not DOC.is_file():
        return []
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("ct-infer "):
                lines.append(line.strip())
    return lines


LINES = _command_lines()


def test_docs_have_commands() -> None:
    if not DOC.is_file():
        pytest.skip("docs/infer.md not beside this checkout")
    assert len(LINES) >= 10


@pytest.mark.parametrize("line", LINES)
def test_documented_command_exists(line: str) -> None:
    group = typer.main.get_command(app)
    words = shlex.split(line.split("#")[0])
    name = words[1]
    assert name in group.commands, f"unknown command {name!r}"  # type: ignore[attr-defined]
    command = group.commands[name]  # type: ignore[attr-defined]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for word in words[2:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{name}: no option {word}"
