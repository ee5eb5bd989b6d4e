"""The worked example plugin (docs/examples/camtrap-example-plugin) installs like any
third-party package and is found through its entry point.

A temporary virtual environment gets ct-io and the example (``uv venv`` + ``uv pip
install``, from uv's cache or PyPI) — no workspace magic, no torch — and the test drives
the installed ``ct-io`` there, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ct_io.cct import read_cct
from ct_io.plugins import collect, make_plugin_manager

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "camtrap-example-plugin"
PLUGIN = {"plugin": "camtrap_example", "distribution": "camtrap-example-plugin"}


def find_uv() -> str:
    uv = shutil.which("uv")
    if uv:
        return uv
    try:
        from uv import find_uv_bin  # the uv wheel nox installs

        return str(find_uv_bin())
    except ImportError:
        pytest.fail("uv is needed to build the temporary environment: pip install uv")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything pointing at the workspace's own venv or plugins."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "CAMTRAP_PLUGINS", "UV_PROJECT_ENVIRONMENT"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh environment holding only ct-io and the example plugin; yields its bin/."""
    root = tmp_path_factory.mktemp("example-plugin") / "venv"
    uv = find_uv()
    env = clean_env()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(root)],
        check=True,
        env=env,
        timeout=120,
    )
    install = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            # rebuild the two local packages: uv's cache keys a local build by its
            # pyproject.toml, so an edited module could otherwise come from a stale wheel
            "--refresh-package",
            "ct-io",
            "--refresh-package",
            "camtrap-example-plugin",
            "--python",
            str(root / "bin" / "python"),
            str(REPO / "packages" / "ct-io"),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    site = next(root.glob("lib/python*/site-packages"))
    for module in ("ct_io/hookspecs.py", "ct_io/plugins.py"):
        installed = (site / module).read_text()
        assert installed == (REPO / "packages/ct-io/src" / module).read_text(), f"stale {module}"
    yield root / "bin"


def run(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=300,
    )


def plugin_rows(bin_dir: Path, **env: str) -> list[dict[str, object]]:
    result = run(bin_dir, "ct-io", "plugins", "--json", **env)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_the_example_is_found_through_its_entry_point(venv: Path) -> None:
    rows = {row["name"]: row for row in plugin_rows(venv)}
    assert rows["species-folders"] == {
        "kind": "data source",
        "name": "species-folders",
        **PLUGIN,
        "description": "Images sorted into one folder per species (optionally per location)",
        "options": ["root", "layout", "name"],
    }
    assert {k: rows["poly1"][k] for k in ("kind", "plugin", "distribution", "options")} == {
        "kind": "loss",
        **PLUGIN,
        "options": ["epsilon", "label_smoothing"],
    }
    assert rows["demo"]["distribution"] == "ct-io", "built-ins load beside it"

    table = run(venv, "ct-io", "plugins")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    for name in ("poly1", "species-folders"):  # a name line, then its "from ..." credit line
        [at] = [i for i, line in enumerate(lines) if line.startswith(f"  {name}  ")]
        credit = next(line for line in lines[at + 1 :] if line.lstrip().startswith("from "))
        assert "from camtrap_example (camtrap-example-plugin)" in credit, credit


def test_camtrap_plugins_hides_or_selects_the_example(venv: Path) -> None:
    hidden = {row["name"] for row in plugin_rows(venv, CAMTRAP_PLUGINS="")}
    assert "demo" in hidden
    assert not hidden & {"poly1", "species-folders"}
    for allow in ("camtrap_example", "camtrap-example-plugin"):  # entry-point or distribution name
        shown = {row["name"] for row in plugin_rows(venv, CAMTRAP_PLUGINS=allow)}
        assert {"poly1", "species-folders"} <= shown
    typo = run(venv, "ct-io", "plugins", CAMTRAP_PLUGINS="camtrap_exmaple")
    assert typo.returncode == 2
    assert "did you mean 'camtrap_example'?" in typo.stderr


def test_the_registry_api_sees_the_example_without_torch(venv: Path) -> None:
    snippet = """
import json, sys
from ct_io.plugins import collect
loss = collect("loss").get("poly1")
source = collect("data source").get("species-folders")
try:
    loss.create(3, [1, 1, 1])
    lazy = "no error"
except ModuleNotFoundError as exc:
    lazy = exc.name
print(json.dumps({
    "loss": [loss.plugin, loss.distribution, loss.options.__name__],
    "source": [source.plugin, source.distribution, source.options.__name__],
    "torch_imported": "torch" in sys.modules,
    "factory_needs": lazy,
}))
"""
    result = run(venv, "python", "-c", snippet)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "loss": ["camtrap_example", "camtrap-example-plugin", "Poly1Options"],
        "source": ["camtrap_example", "camtrap-example-plugin", "SpeciesFoldersOptions"],
        "torch_imported": False,
        "factory_needs": "torch",  # the loss factory imports torch only when called
    }


def make_photos(root: Path) -> None:
    for rel, colour in {
        "site_A/bobcat/IMG_0001.JPG": "red",
        "site_A/bobcat/IMG_0002.jpg": "orange",
        "site_A/empty/IMG_0003.jpg": "gray",
        "site_B/coyote/IMG_0004.png": "brown",
        "site_B/notes.txt": None,
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if colour is None:
            path.write_text("not an image")
        else:
            Image.new("RGB", (64, 48), colour).save(
                path, format="PNG" if rel.endswith(".png") else "JPEG"
            )


def test_ct_io_fetch_runs_the_example_data_source(venv: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    make_photos(photos)
    out = tmp_path / "data"
    fetched = run(
        venv,
        "ct-io",
        "fetch",
        "species-folders",
        str(out),
        "-o",
        f"root={photos}",
        "-o",
        "layout=location/species",
    )
    assert fetched.returncode == 0, fetched.stderr
    cct_path = out / "species-folders" / "species-folders_cct.json"
    assert str(cct_path) in fetched.stdout.replace("\n", "")

    validated = run(venv, "ct-io", "validate", str(cct_path))
    assert validated.returncode == 0, validated.stdout + validated.stderr

    ds = read_cct(cct_path)
    assert ds.category_names == {0: "empty", 1: "bobcat", 2: "coyote"}
    by_file = ds.images.set_index("file_name")["location"].to_dict()
    assert by_file == {
        "site_A/bobcat/IMG_0001.JPG": "site_A",
        "site_A/bobcat/IMG_0002.jpg": "site_A",
        "site_A/empty/IMG_0003.jpg": "site_A",
        "site_B/coyote/IMG_0004.png": "site_B",
    }
    labels = dict(zip(ds.annotations["image_id"], ds.annotations["category_id"], strict=True))
    assert labels["site_B/coyote/IMG_0004.png"] == 2
    assert labels["site_A/empty/IMG_0003.jpg"] == 0
    for name in by_file:
        assert (out / "species-folders" / "images" / name).read_bytes() == (
            photos / name
        ).read_bytes()


def test_bad_options_fail_in_one_line(venv: Path, tmp_path: Path) -> None:
    result = run(
        venv, "ct-io", "fetch", "species-folders", str(tmp_path / "out"), "-o", "rot=/photos"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown key 'rot' (did you mean 'root'?)" in result.stderr
    assert "$.root: required option missing" in result.stderr

    result = run(
        venv,
        "ct-io",
        "fetch",
        "species-folders",
        str(tmp_path / "out"),
        "-o",
        "root=/nonexistent",
        "-o",
        "layout=flat",
    )
    assert result.returncode == 2
    assert "$.layout: expected one of 'species', 'location/species'" in result.stderr


# ---------------------------------------------------------------- the loss, with torch


@pytest.fixture
def example_pm(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The example's plugin module registered by hand in this (workspace) environment."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import camtrap_example.plugin

    pm = make_plugin_manager(load_entry_points=False)
    pm.register_plugin(
        camtrap_example.plugin, "camtrap_example", distribution="camtrap-example-plugin"
    )
    yield pm
    for name in [m for m in sys.modules if m.startswith("camtrap_example")]:
        del sys.modules[name]


def test_poly1_loss_matches_its_formula(example_pm) -> None:  # type: ignore[no-untyped-def]
    import torch
    from torch.nn import functional

    reg = collect("loss", example_pm).get("poly1")
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]])
    targets = torch.tensor([0, 1, 2])

    plain = reg.create(3, [5, 5, 5], options={"epsilon": 0.0})
    torch.testing.assert_close(
        plain(logits, targets), functional.cross_entropy(logits, targets, reduction="none")
    )

    poly = reg.create(3, [5, 5, 5], options={"epsilon": 2.0})
    p_t = logits.softmax(-1)[torch.arange(3), targets]
    expected = functional.cross_entropy(logits, targets, reduction="none") + 2.0 * (1 - p_t)
    torch.testing.assert_close(poly(logits, targets), expected)
    assert poly(logits, targets).shape == (3,), "per-example losses, so the trainer can weight them"
