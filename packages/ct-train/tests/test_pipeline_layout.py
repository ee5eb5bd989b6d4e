"""The ``ct-train run`` modules depend one way: types ← stages ← runner, and the stage
order lives in one place (the runner's ``STAGES``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ct_train.pipeline
from ct_io.errors import CamtrapError
from ct_train.cli import app
from ct_train.pipeline.runner import STAGE_NAMES, check_range

PIPELINE = Path(ct_train.pipeline.__file__).parent
#: Each module may import (at the top or inside a function) only modules of earlier layers.
LAYERS = [
    {"sections", "digests", "stages"},
    {"lineages"},
    {"data_stages", "model_stages"},
    {"runner"},
    {"demo"},
]


def pipeline_imports(module: str) -> set[str]:
    """The ``ct_train.pipeline`` modules ``module`` imports anywhere in its source."""
    tree = ast.parse((PIPELINE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    prefix = "ct_train.pipeline."
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ct_train.pipeline":
            found |= {alias.name for alias in node.names}
            continue
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n.removeprefix(prefix).split(".")[0] for n in names if n.startswith(prefix)}
    return found


def test_layers_cover_every_module() -> None:
    modules = {p.stem for p in PIPELINE.glob("*.py") if p.stem != "__init__"}
    assert modules == set().union(*LAYERS)


@pytest.mark.parametrize("depth", range(len(LAYERS)))
def test_modules_import_only_earlier_layers(depth: int) -> None:
    earlier = set().union(set(), *LAYERS[:depth])
    for module in sorted(LAYERS[depth]):
        assert pipeline_imports(module) <= earlier, module


def test_unknown_stage_lists_the_stages_in_order() -> None:
    with pytest.raises(CamtrapError) as err:
        check_range("crops", None)
    assert str(err.value) == f"unknown stage 'crops'; stages: {', '.join(STAGE_NAMES)}"
    assert check_range("crop", "split") == (STAGE_NAMES.index("crop"), STAGE_NAMES.index("split"))


def test_run_help_lists_the_stages_in_run_order() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert f"<{'|'.join(STAGE_NAMES)}>" in " ".join(result.output.split())  # --from/--to choices
