"""The docs stay true (run by ``nox -s docs``).

- every relative link in docs/ (and the README) points at a file that exists, and every
  ``#anchor`` at a heading that exists;
- every plugin hook (as the plugin manager lists them) has a section in docs/plugins.md
  and a test function named for it (``test_<hook>``);
- every ``ct-*`` command in a ``bash`` block names a real subcommand and real options;
- every ``python`` block compiles;
- every block fenced as ```` ```bash runnable ```` or ```` ```python runnable ```` runs
  and exits 0, in a fresh temporary folder with this environment's scripts on PATH;
- the blocks of a page fenced as ```` ```bash runnable sequence ```` run in order, in one
  folder that stands for a fresh clone of the repository (a copy of the working tree),
  and what the page promises exists afterwards (the quickstart: marked ``slow``);
- docs/reference/ is what ``docs/scripts/cli_reference.py`` generates from the typer apps
  now, and each reference page and its guides link each other.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from ct_io.plugins import make_plugin_manager

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SKIP_DIRS = {".venv", "build", "dist", "node_modules", "__pycache__"}


def doc_pages() -> list[Path]:
    pages = [p for p in DOCS.rglob("*.md") if not SKIP_DIRS & set(p.relative_to(DOCS).parts)]
    readme = REPO / "README.md"
    return sorted(pages) + ([readme] if readme.is_file() else [])


def page_id(page: Path) -> str:
    return page.relative_to(REPO).as_posix() if page.is_relative_to(REPO) else page.name


# ---------------------------------------------------------------- markdown parsing


class Block:
    """A fenced code block: where it starts, its info string and its code."""

    def __init__(self, page: Path, line: int, info: str, code: str) -> None:
        self.page, self.line, self.info, self.code = page, line, info, code
        words = info.split()
        self.language = words[0].lower() if words else ""
        self.runnable = "runnable" in words[1:]
        self.sequence = self.runnable and "sequence" in words[1:]

    @property
    def id(self) -> str:
        return f"{page_id(self.page)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fenced_blocks(text: str, page: Path = DOCS / "inline.md") -> list[Block]:
    """Every fenced code block of a markdown text (fences may be indented in lists)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        fence, indent, start = opening["fence"], len(opening["indent"]), i
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        else:
            raise AssertionError(f"{page_id(page)}:{start + 1}: code block never closed")
        blocks.append(
            Block(page, start + 1, opening["info"].strip(), textwrap.dedent("\n".join(body)) + "\n")
        )
        i += 1
    return blocks


def prose(text: str) -> str:
    """The text outside code blocks and inline code spans (where links live)."""
    kept, fence = [], None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m["fence"]
            kept.append("")
            continue
        if fence is not None:
            if (
                m
                and m["fence"][0] == fence[0]
                and len(m["fence"]) >= len(fence)
                and not m["info"].strip()
            ):
                fence = None
            kept.append("")
            continue
        kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


_LINK = re.compile(
    r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|href=\"([^\"]+)\""
)


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link in the prose."""
    for n, line in enumerate(prose(text).splitlines(), start=1):
        for m in _LINK.finditer(line):
            yield n, m.group(1) or m.group(2)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(
        r"[`*_~]+(?=\w)|(?<=\w)[`*~]+",
        lambda m: "_" if "_" in m.group() and m.group().strip("_") == "" else "",
        text,
    )
    text = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_with_headings(page.read_text()):
        base = slug(line)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def prose_with_headings(text: str) -> list[str]:
    headings = []
    fence = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m["fence"]
        elif fence is not None:
            if m and m["fence"][0] == fence[0] and not m["info"].strip():
                fence = None
        elif h := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            headings.append(h.group(1))
    return headings


# ---------------------------------------------------------------- the mechanism itself


SAMPLE = """
# Title

Text with a [link](install.md) and `[not a link](nowhere.md)`.

```bash runnable
echo hello
```

1. In a list:

   ```python
   print("indented")
   ```

````markdown
```bash runnable
not a real block
```
````
"""


def test_fenced_blocks_are_parsed_with_their_info_strings() -> None:
    blocks = fenced_blocks(SAMPLE)
    assert [(b.language, b.runnable, b.code) for b in blocks] == [
        ("bash", True, "echo hello\n"),
        ("python", False, 'print("indented")\n'),
        ("markdown", False, "```bash runnable\nnot a real block\n```\n"),
    ]
    assert [b.line for b in blocks] == [6, 12, 16]


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(AssertionError, match="never closed"):
        fenced_blocks("```bash\nls\n")


def test_links_skip_code() -> None:
    assert [target for _, target in links(SAMPLE)] == ["install.md"]


def test_slugs_follow_github() -> None:
    assert slug("The five hooks") == "the-five-hooks"
    assert slug("ct_register_data_sources") == "ct_register_data_sources"
    assert slug("`ct_register_losses`") == "ct_register_losses"
    assert (
        slug("MegaDetector batch-output JSON (MD JSON)") == "megadetector-batch-output-json-md-json"
    )
    assert slug("Crop file names") == "crop-file-names"


def test_runnable_blocks_fail_when_their_command_fails(tmp_path: Path) -> None:
    ok, bad = fenced_blocks(
        "```bash runnable\ntrue\n```\n\n```python runnable\nraise SystemExit(3)\n```\n"
    )
    assert run_block(ok, tmp_path).returncode == 0
    assert run_block(bad, tmp_path).returncode == 3


def test_command_checker_catches_unknown_subcommands_and_options() -> None:
    assert command_problems("ct-io plugins --json") == []
    assert command_problems("CAMTRAP_PLUGINS= ct-io plugins") == []
    assert command_problems("uv run ct-io validate a.json --max-problems 3") == []
    assert command_problems("ct-io fetch demo out -o seed=1 -o images=20") == []
    [problem] = command_problems("ct-io plugin")
    assert problem.startswith("ct-io: no subcommand 'plugin' (have: ")
    assert {"fetch", "info", "plugins", "validate"} <= set(
        problem[problem.index("have: ") + 6 : -1].split(", ")
    )
    assert command_problems("ct-io plugins --jsn") == ["ct-io plugins: no option '--jsn'"]
    assert command_problems("ct-nope run") == ["ct-nope: no such console script"]
    assert command_problems(".nox/demo/bin/ct-train run c.yml --frm x") == [
        "ct-train run: no option '--frm'"
    ]


# ---------------------------------------------------------------- links


def all_links() -> list[tuple[Path, int, str]]:
    return [(page, n, target) for page in doc_pages() for n, target in links(page.read_text())]


@pytest.mark.parametrize("page", doc_pages(), ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for n, target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"line {n}: {target} → {dest} does not exist")
            continue
        if REPO not in dest.parents and dest != REPO:
            broken.append(f"line {n}: {target} leaves the repository")
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"line {n}: {target}: no heading '#{anchor}' in {dest.name}")
    assert not broken, f"{page_id(page)}:\n" + "\n".join(broken)


def test_every_doc_page_is_linked_from_the_index() -> None:
    linked = {
        (DOCS / target.partition("#")[0]).resolve()
        for _, target in links((DOCS / "index.md").read_text())
    }
    pages = {p.resolve() for p in doc_pages() if p.parent == DOCS and p.name != "index.md"}
    assert not pages - linked, (
        f"pages missing from docs/index.md: {sorted(p.name for p in pages - linked)}"
    )


# ---------------------------------------------------------------- hooks


#: Every hook the plugin manager knows (an empty manager has exactly the specs).
HOOKS = sorted(
    name for name in dir(make_plugin_manager(load_entry_points=False).hook) if name[0] != "_"
)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    headings = prose_with_headings((DOCS / "plugins.md").read_text())
    assert any(slug(h) == hook for h in headings), f"docs/plugins.md has no section '### {hook}'"


@cache
def names_of_test_functions() -> set[str]:
    """Names of the test functions in every test file of the workspace."""
    files = list(REPO.glob("packages/*/tests/**/*.py")) + list((REPO / "tests").glob("**/*.py"))
    return {
        node.name
        for f in files
        for node in ast.walk(ast.parse(f.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    assert f"test_{hook}" in names_of_test_functions(), f"no test function is named test_{hook}"


# ---------------------------------------------------------------- ct-train run stages


def test_the_stage_table_lists_every_stage_in_run_order() -> None:
    from ct_train.pipeline.runner import STAGE_NAMES

    text = (DOCS / "train.md").read_text()
    table = re.search(r"^\| stage \| does \(package\) \| writes \|\n((?:\|.*\n)+)", text, re.M)
    assert table, "docs/train.md has no stage table (| stage | does (package) | writes |)"
    rows = re.findall(r"^\| `([a-z_]+)` \|", table.group(1), re.MULTILINE)
    assert tuple(rows) == STAGE_NAMES, "docs/train.md's stage table and runner.STAGES disagree"


# ---------------------------------------------------------------- commands in bash blocks


@cache
def console_scripts() -> dict[str, Any]:
    """``ct-*`` console script → its click command (from the installed typer apps)."""
    scripts: dict[str, Any] = {}
    for ep in md.entry_points(group="console_scripts"):
        if ep.name.startswith("ct-") and ep.name not in scripts:
            module = importlib.import_module(ep.module)
            app = getattr(module, "app", None)
            if isinstance(app, typer.Typer):
                scripts[ep.name] = typer.main.get_command(app)
    return scripts


def shell_commands(code: str) -> Iterator[list[str]]:
    """Simple commands of a shell snippet as token lists (heredoc bodies skipped)."""
    lines = code.replace("\\\n", " ").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
            i += 1
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        command: list[str] = []
        for token in [*tokens, ";"]:
            if token in {"&&", "||", ";", "|", "&"}:
                if command:
                    yield command
                command = []
            else:
                command.append(token)


def command_problems(line: str) -> list[str]:
    problems = []
    for tokens in shell_commands(line):
        while tokens and re.match(r"^[A-Za-z_]\w*=", tokens[0]):
            tokens = tokens[1:]
        if tokens[:2] == ["uv", "run"]:
            tokens = tokens[2:]
        script = Path(tokens[0]).name if tokens else ""  # ct-io, or .venv/bin/ct-io
        if not script.startswith("ct-"):
            continue
        problems += _check_click(script, tokens[1:])
    return problems


def _check_click(script: str, args: list[str]) -> list[str]:
    command = console_scripts().get(script)
    if command is None:
        return [f"{script}: no such console script"]
    where = script
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("-") and arg != "-":
            name = arg.split("=", 1)[0]
            option = next((p for p in command.params if name in p.opts + p.secondary_opts), None)
            if option is None and name != "--help":
                return [f"{where}: no option {name!r}"]
            if option is not None and not getattr(option, "is_flag", False) and "=" not in arg:
                i += 1  # the option's value
        elif isinstance(getattr(command, "commands", None), dict):  # a group
            sub = command.commands.get(arg)
            if sub is None:
                have = ", ".join(sorted(command.commands))
                return [f"{where}: no subcommand {arg!r} (have: {have})"]
            command, where = sub, f"{where} {arg}"
        # anything else is a positional argument
    return []


def bash_blocks() -> list[Block]:
    return [
        b
        for page in doc_pages()
        for b in fenced_blocks(page.read_text(), page)
        if b.language in ("bash", "sh", "shell", "console")
    ]


@pytest.mark.parametrize("block", bash_blocks(), ids=lambda b: b.id)
def test_commands_in_docs_are_real(block: Block) -> None:
    problems = command_problems(block.code)
    assert not problems, f"{block.id}: " + "; ".join(problems)


def inline_commands() -> list[tuple[str, str]]:
    """``(page, command)`` for every inline code span of prose that starts with a console
    script (``ct-io plugins``), outside fenced blocks."""
    found = []
    for page in doc_pages():
        text = page.read_text()
        for block in fenced_blocks(text, page):
            text = text.replace(block.code, "")
        for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text):
            if re.match(r"ct-[a-z]+ [a-z]", span):
                found.append((page_id(page), span))
    return found


def test_commands_named_in_prose_are_real() -> None:
    """``ct-io sources`` in prose named a command that never existed (issue 15 item 12)."""
    spans = inline_commands()
    assert len(spans) > 20
    problems = [f"{page}: `{span}`: {p}" for page, span in spans for p in command_problems(span)]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- python blocks


def python_blocks() -> list[Block]:
    return [
        b
        for page in doc_pages()
        for b in fenced_blocks(page.read_text(), page)
        if b.language in ("python", "py")
    ]


@pytest.mark.parametrize("block", python_blocks(), ids=lambda b: b.id)
def test_python_examples_compile(block: Block) -> None:
    try:
        ast.parse(block.code, filename=block.id)
    except SyntaxError as exc:
        pytest.fail(f"{block.id}: {exc}")


# ---------------------------------------------------------------- runnable blocks


def run_block(block: Block, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CAMTRAP_PLUGINS"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["COLUMNS"] = "120"
    if block.language == "python":
        script = cwd / "example.py"
        script.write_text(block.code)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def runnable_blocks() -> list[Block]:
    return [
        b
        for page in doc_pages()
        if page.is_relative_to(DOCS)
        for b in fenced_blocks(page.read_text(), page)
        if b.runnable and not b.sequence
    ]


def test_runnable_blocks_exist() -> None:
    assert runnable_blocks(), (
        "no ```bash runnable``` or ```python runnable``` blocks found in docs/"
    )
    assert {b.language for b in runnable_blocks()} <= {"bash", "python"}


def failure(block: Block, result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{block.id} exited {result.returncode}\n--- code\n{block.code}"
        f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    )


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda b: b.id)
def test_runnable_blocks_run(block: Block, tmp_path: Path) -> None:
    result = run_block(block, tmp_path)
    assert result.returncode == 0, failure(block, result)


# ---------------------------------------------------------------- runnable sequences
#
# A walk-through whose commands build on each other (the quickstart) fences them
# ```bash runnable sequence```: they run in order, in one folder standing for the reader's
# fresh clone of the repository, and the page's promises are then checked on that folder.

QUICKSTART = DOCS / "quickstart.md"


def sequence_blocks(page: Path) -> list[Block]:
    return [b for b in fenced_blocks(page.read_text(), page) if b.sequence]


def sequence_pages() -> list[Path]:
    return [p for p in doc_pages() if p.is_relative_to(DOCS) and sequence_blocks(p)]


def copy_of_working_tree(dest: Path) -> Path:
    """What a clone of this checkout holds: tracked and untracked-but-not-ignored files."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the repository's git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.split(b"\0")):
        src = REPO / os.fsdecode(rel)
        if src.is_file() or src.is_symlink():  # a tracked file deleted in the tree is skipped
            target = dest / os.fsdecode(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)
    return dest


class Step:
    """One block of a sequence, what it printed, and when it started (``time.time()``)."""

    def __init__(
        self, block: Block, result: subprocess.CompletedProcess[str], started: float
    ) -> None:
        self.block, self.result, self.started = block, result, started


def run_sequence(page: Path, cwd: Path) -> list[Step]:
    """Run a page's sequence blocks in order in ``cwd``; fail at the first that fails."""
    steps = []
    for block in sequence_blocks(page):
        started = time.time()
        result = run_block(block, cwd, timeout=1800)
        assert result.returncode == 0, failure(block, result)
        steps.append(Step(block, result, started))
    return steps


def check_quickstart(root: Path, steps: list[Step]) -> None:
    """What docs/quickstart.md promises exists and is valid."""
    from ct_infer.predictor import load_classifier
    from ct_io.jsonio import read_json
    from ct_io.md import validate_md_dict

    run = root / "demo-run" / "location-split"
    html = (run / "report" / "report.html").read_text()
    assert "<html" in html.lower() and "confusion" in html.lower()

    model = run / "model"
    bundle_file = model / "location-split.safetensors"
    bundle = load_classifier(bundle_file)
    assert bundle.labels, "the bundle has no labels"
    for export in ("location-split.torchscript.pt", "location-split.onnx"):
        assert list(load_classifier(model / export).labels) == list(bundle.labels), export

    # "Run the chain again and every stage is found up to date and skipped"
    rerun = next(s for s in steps if "ct-train run" in s.block.code)
    assert "skipped" in rerun.result.stdout and " ran " not in rerun.result.stdout, (
        rerun.result.stdout
    )
    assert bundle_file.stat().st_mtime < rerun.started, "the rerun rewrote the bundle"

    timelapse = root / "demo-run" / "demo-with-species.json"
    for beside in (".json.classifications.csv.gz", ".summary.csv"):
        assert timelapse.with_name("demo-with-species" + beside).is_file(), beside
    data = read_json(timelapse)
    errors = [p for p in validate_md_dict(data) if p.is_error]
    assert not errors, "\n".join(map(str, errors))
    categories = data.get("classification_categories") or {}
    assert set(categories.values()) >= set(bundle.labels), categories
    classified = [
        d
        for image in data["images"]
        for d in image.get("detections") or []
        if d.get("classifications")
    ]
    assert classified, "no detection has classifications: Timelapse would show no species"
    assert {c for d in classified for c, _ in d["classifications"]} <= set(categories)


SEQUENCE_CHECKS = {QUICKSTART: check_quickstart}


def test_the_quickstart_runs_all_but_the_clone() -> None:
    """Every shell block of the quickstart is a runnable sequence step, except the one
    that clones the repository (the test's copy of the working tree stands for it)."""
    shell = [b for b in fenced_blocks(QUICKSTART.read_text(), QUICKSTART) if b.language == "bash"]
    not_run = [b for b in shell if not b.sequence]
    assert len(not_run) == 1 and "git clone" in not_run[0].code, [b.id for b in not_run]
    assert len(shell) > 1 and "git clone" not in "".join(b.code for b in shell if b.sequence)


def test_sequences_stop_at_the_first_failing_block(tmp_path: Path) -> None:
    page = tmp_path / "walk.md"
    page.write_text(
        "```bash runnable sequence\necho one > one.txt\n```\n\n"
        "```bash runnable sequence\ntest -f one.txt && false\n```\n\n"
        "```bash runnable sequence\ntouch never.txt\n```\n"
    )
    with pytest.raises(AssertionError, match=r"walk.md:5 exited 1"):
        run_sequence(page, tmp_path)
    assert (tmp_path / "one.txt").exists() and not (tmp_path / "never.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("page", sequence_pages(), ids=page_id)
def test_runnable_sequences_run(page: Path, tmp_path: Path) -> None:
    root = copy_of_working_tree(tmp_path / "clone")
    steps = run_sequence(page, root)
    if check := SEQUENCE_CHECKS.get(page):
        check(root, steps)


# ---------------------------------------------------------------- the command reference

REFERENCE = DOCS / "reference"
GENERATOR = "docs/scripts/cli_reference.py"


def workspace_console_scripts() -> set[str]:
    scripts: set[str] = set()
    for pyproject in REPO.glob("packages/*/pyproject.toml"):
        scripts |= set(tomllib.loads(pyproject.read_text())["project"].get("scripts", {}))
    return scripts


def test_the_reference_is_what_the_commands_say(tmp_path: Path) -> None:
    """docs/reference/ matches a fresh generation (which also fails if it imports torch)."""
    result = subprocess.run(
        [sys.executable, str(REPO / GENERATOR), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.md")}
    committed = {p.name: p.read_text() for p in REFERENCE.glob("*.md")}
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"docs/reference is out of date ({', '.join(stale)}): run python {GENERATOR}"


def test_every_console_script_has_a_reference_page() -> None:
    pages = {p.stem for p in REFERENCE.glob("ct-*.md")}
    assert pages == workspace_console_scripts(), f"run python {GENERATOR}"


@pytest.mark.parametrize("script", sorted(workspace_console_scripts()))
def test_reference_pages_and_guides_link_each_other(script: str) -> None:
    ref = REFERENCE / f"{script}.md"
    guides = {
        (REFERENCE / target).resolve()
        for _, target in links(ref.read_text())
        if target.startswith("../") and target.endswith(".md")
    } - {QUICKSTART.resolve()}
    assert guides, f"{page_id(ref)} links no guide page"
    for guide in guides:
        back = {(guide.parent / t.partition("#")[0]).resolve() for _, t in links(guide.read_text())}
        assert ref.resolve() in back, f"{page_id(guide)} does not link reference/{script}.md"
    index = {
        (DOCS / t.partition("#")[0]).resolve() for _, t in links((DOCS / "index.md").read_text())
    }
    assert ref.resolve() in index, f"docs/index.md does not link reference/{script}.md"
