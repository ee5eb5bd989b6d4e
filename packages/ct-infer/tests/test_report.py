"""``ct-infer report`` on a run folder of real crops: the header, the crops behind the
numbers, thumbnails made once, and the page as Chromium renders it.

Set ``CAMTRAP_WRITE_DOCS_IMG=1`` to refresh the report screenshot of docs/review.md.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
from PIL import Image
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.report import build_report

DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_report_shows_model_data_and_the_crops_behind_the_numbers(
    synthetic_run: Path, tiny_bundle: Path
) -> None:
    (synthetic_run / "model").mkdir()
    shutil.copyfile(tiny_bundle, synthetic_run / "model" / "run.safetensors")
    # a run's evaluation folder: crops, bundle and dataset table come from the run
    result = CliRunner().invoke(app, ["report", str(synthetic_run / "evaluation")])
    assert result.exit_code == 0, result.output
    out = synthetic_run / "evaluation" / "report"
    text = (out / "report.html").read_text()
    # the header: model, data, date
    for fact in (
        "timm:test_efficientnet",
        "64 px",
        "4: antelope, bird, carnivore, primate",
        "none (temperature 1)",
        "report made",
    ):
        assert fact in text, fact
    table = pd.read_csv(synthetic_run / "classification_ds.csv")
    outputs = pd.read_csv(synthetic_run / "evaluation" / "outputs_val.csv.gz")
    locations = table[table["path"].isin(outputs["path"])]["location"].nunique()
    assert re.search(rf"<td>val</td><td>{len(outputs)}</td><td>{locations}</td><td>md</td>", text)
    # counts are whole numbers; a label without crops in a split says so
    assert f"<td>val</td><td>{len(outputs)}</td><td>0." in text
    assert f"<td>{len(outputs)}.000</td>" not in text
    assert "<i>no examples in val</i>" in text and "primate: no examples in val" in text
    # crops: strips per top confusion and grids per label, small thumbnails made once
    assert "Top confusions" in text and "Crops by label (val), grouped by prediction" in text
    shown = set(re.findall(r"src='(thumbs/[0-9a-f]+\.jpg)'", text))
    assert len(shown) >= 20
    for rel in shown:
        with Image.open(out / rel) as im:
            assert max(im.size) <= 112
        assert (out / rel).stat().st_size < 12_000
    assert {p.name for p in (out / "thumbs").iterdir()} == {Path(r).name for r in shown}
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()}
    build_report(
        synthetic_run / "evaluation",
        out,
        crops_dir=synthetic_run / "crops",
        grid_label="bird",
        grid_split="val",
    )
    again = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()}
    assert again and all(stamps[name] == t for name, t in again.items())  # reused, not remade
    assert set(again) < set(stamps)  # fewer grids: the thumbnails no longer shown are gone


def test_report_renders_with_every_crop_in_chromium(
    synthetic_run: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report"
    build_report(
        synthetic_run / "evaluation",
        out,
        crops_dir=synthetic_run / "crops",
        model=tiny_bundle,
        dataset_csv=synthetic_run / "classification_ds.csv",
    )
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "the report test needs the system Chromium (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=CHROMIUM_ARGS)
        try:
            page = b.new_page(viewport={"width": 1200, "height": 1400})
            page.goto((out / "report.html").as_uri())
            images = page.locator("img")
            total = images.count()
            assert total >= 25
            for i in range(total):  # scrolled to, each lazy thumbnail loads and decodes
                images.nth(i).scroll_into_view_if_needed()
                page.wait_for_function(
                    "el => el.complete && el.naturalWidth > 0", arg=images.nth(i).element_handle()
                )
            shots = []
            for heading, name in (
                ("Top confusions", "report-crops.png"),
                ("Crops by label (train)", "report-grids.png"),
            ):
                page.locator("h3", has_text=heading).first.evaluate("h => h.scrollIntoView()")
                shots.append(tmp_path / name)
                page.screenshot(path=str(shots[-1]))
        finally:
            b.close()
    for shot in shots:
        assert shot.stat().st_size > 20_000
        if os.environ.get("CAMTRAP_WRITE_DOCS_IMG") == "1":
            shutil.copyfile(shot, DOCS_IMG / shot.name)
