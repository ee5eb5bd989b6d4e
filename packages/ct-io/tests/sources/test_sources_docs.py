"""Every ``ct-io`` command line in docs/sources.md names a real command and real options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from ct_io.cli import app

DOC = Path(__file__).resolve().parents[4] / "docs" / "sources.md"


def command_lines() -> list[str]:
    text = DOC.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    joined = [b.replace("\\\n", " ") for b in blocks]
    return [
        line.strip() for b in joined for line in b.splitlines() if line.strip().startswith("ct-io ")
    ]


def test_the_doc_has_command_lines():
    assert len(command_lines()) >= 10


@pytest.mark.parametrize("line", command_lines())
def test_doc_command_is_real(line: str):
    root = typer.main.get_command(app)
    words = shlex.split(line)[1:]
    cmd = root
    ctx = root.make_context("ct-io", ["--help"], resilient_parsing=True)
    while hasattr(cmd, "list_commands") and words and words[0] in cmd.list_commands(ctx):
        cmd = cmd.get_command(ctx, words.pop(0))
    assert not hasattr(cmd, "list_commands"), f"{line!r} names no command"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    used = {w.split("=")[0] for w in words if w.startswith("-")}
    assert used <= known, f"{line!r}: unknown option(s) {sorted(used - known)}"
    cmd.make_context(cmd.name, list(words), resilient_parsing=False)  # parses: right arity, types
