"""Hostile paths from input data (``../..``, absolute paths, symlinks that leave the data
folder) through every writer: nothing lands outside the output folder the user chose, and
the user sees a one-line error or a counted failure, never a traceback.

The corpus (``test_corpus.py``) checks the outcome of each bad input; here the whole work
folder is snapshotted before and after each command, and every new or changed path must
sit inside that command's output folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import FileServer, Result, assert_no_traceback, run_cli, write_json
from .test_corpus import work  # noqa: F401  (the corpus's work folder fixture)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (symlinks not followed) with its size and mtime."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            st = path.lstat()
            out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def changed_outside(root: Path, before: dict[str, tuple[int, int]], out: str) -> list[str]:
    after = snapshot(root)
    changed = [p for p, v in after.items() if before.get(p) != v]
    changed += [p for p in before if p not in after]
    return sorted(p for p in changed if p != out and not p.startswith(out + "/"))


def one_line_or_counted(result: Result) -> None:
    assert_no_traceback(result)
    if result.code != 0:
        errors = [line for line in result.err.splitlines() if line.startswith("error")]
        assert len(errors) == 1, result.err


# (case id, argv, output folder inside the work folder)
WRITERS: list[tuple[str, list[str], str]] = [
    ("crop-cct", ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "hostile.json",
                  "-w", "1"], "out"),
    ("crop-full-images", ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "hostile.json",
                          "--save-full-images", "-w", "1"], "out"),
    ("crop-md", ["ct-crop", "crop", "out", "-i", "data/images", "-d", "hostile_md.json",
                 "-w", "1"], "out"),
    ("select", ["ct-taxonomy", "select", "spec_ok.json", "-o", "sel", "-d",
                "hostile=hostile.json"], "sel"),
    ("merge", ["ct-infer", "merge", "hostile_probs.csv", "-o", "merged/m.json", "-d",
               "hostile_md.json"], "merged"),
    ("combine", ["ct-io", "combine", "hostile=hostile.json", "-o", "comb/c.json",
                 "--images-dir", "hostile=data/images"], "comb"),
    ("folder", ["ct-io", "folder", "data", "fold"], "fold"),
]  # fmt: skip


@pytest.fixture
def hostile_work(work: Path) -> Path:  # noqa: F811
    """The corpus folder plus an MD JSON and a classifier output full of hostile paths."""
    names = ["good.jpg", "../outside/secret.jpg", str(work / "outside" / "secret.jpg"),
             "a/../../../x.jpg", "link.jpg"]  # fmt: skip
    det = [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]}]
    write_json(
        work / "hostile_md.json",
        {
            "images": [{"file": n, "detections": det} for n in names],
            "detection_categories": {"1": "animal"},
            "info": {"format_version": "1.4"},
        },
    )
    rows = ["path,deer"] + [f"{n}___crop00_mdv5a.jpg,0.9" for n in names]
    (work / "hostile_probs.csv").write_text("\n".join(rows) + "\n")
    return work


@pytest.mark.parametrize(("argv", "out"), [c[1:] for c in WRITERS], ids=[c[0] for c in WRITERS])
def test_writer_keeps_hostile_paths_inside_its_output_folder(
    hostile_work: Path, argv: list[str], out: str
) -> None:
    before, siblings = snapshot(hostile_work), sorted(hostile_work.parent.iterdir())
    result = run_cli(argv, cwd=hostile_work)
    one_line_or_counted(result)
    assert result.code in (0, 1, 2), result.text[-2000:]
    assert changed_outside(hostile_work, before, out) == []
    assert sorted(p.name for p in (hostile_work / "outside").iterdir()) == ["secret.jpg"]
    assert sorted(hostile_work.parent.iterdir()) == siblings


def test_full_images_are_not_written_through_a_symlink_that_leaves_the_output_folder(
    hostile_work: Path,
) -> None:
    """``--save-full-images`` copies images by their data-supplied path (``safe_join``): a
    sub-folder there that is a symlink to elsewhere is refused and counted. (Crops follow
    symlinks the user made inside their own output folder, by design: see
    ``ct_crop.crop.output_path``.)"""
    from ct_crop.crop import FULL_IMAGES_DIR

    full = hostile_work / "out" / FULL_IMAGES_DIR
    full.mkdir(parents=True)
    (full / "sub").symlink_to(hostile_work / "outside", target_is_directory=True)
    (hostile_work / "data" / "images" / "sub").mkdir()
    good = hostile_work / "data" / "images" / "good.jpg"
    (hostile_work / "data" / "images" / "sub" / "deep.jpg").write_bytes(good.read_bytes())
    write_json(
        hostile_work / "sub.json",
        {
            "images": [{"id": "s", "file_name": "sub/deep.jpg", "width": 64, "height": 48}],
            "annotations": [
                {"id": "a", "image_id": "s", "category_id": 1, "bbox": [20, 10, 20, 20]}
            ],
            "categories": [{"id": 1, "name": "deer"}],
        },
    )
    before = snapshot(hostile_work / "outside")
    result = run_cli(
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "sub.json", "--save-full-images",
         "-w", "1"],
        cwd=hostile_work,
    )  # fmt: skip
    one_line_or_counted(result)
    assert snapshot(hostile_work / "outside") == before, "a file was written through the symlink"
    failures = (hostile_work / "out" / "crop_failures.csv").read_text()
    assert "sub/deep.jpg,,unsafe_path" in failures, failures
    assert list((hostile_work / "out" / "sub").glob("deep.jpg___crop*"))  # the crop itself


def test_download_refuses_a_symlink_that_leaves_the_dataset_folder(tmp_path: Path) -> None:
    """``ct-io fetch lila``: file names under a folder that is a symlink to elsewhere are
    counted as unsafe; nothing is written through the link; the other files land."""
    server = FileServer().start()
    try:
        images = {"cam/a.jpg": b"a" * 50, "cam/b.jpg": b"b" * 50, "ok/c.jpg": b"c" * 50}
        for name, data in images.items():
            server.files[f"/imgs/{name}"] = data
        cct = {
            "images": [{"id": n, "file_name": n, "location": "L"} for n in images],
            "annotations": [],
            "categories": [{"id": 1, "name": "empty"}],
        }
        server.files["/meta/d.json"] = json.dumps(cct).encode()
        index = "name,short_name,metadata_url_gcp,image_base_url_gcp\n"
        index += f"Linked,linked,{server.url}/meta/d.json,{server.url}/imgs/\n"
        server.files["/meta/index.csv"] = index.encode()
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "out" / "linked").mkdir(parents=True)
        (tmp_path / "out" / "linked" / "cam").symlink_to(tmp_path / "elsewhere")
        before = snapshot(tmp_path)
        result = run_cli(
            ["ct-io", "fetch", "lila", "out", "-o", "dataset=linked", "-o", "cloud=gcp",
             "-o", f"index={server.url}/meta/index.csv", "-o", "threads=2"],
            cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.stop()
    one_line_or_counted(result)
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert changed_outside(tmp_path, before, "out") == []
    failures = (tmp_path / "out" / "linked" / "download_failures.jsonl").read_text()
    assert failures.count('"unsafe_path"') == 2, failures
    assert (tmp_path / "out" / "linked" / "ok" / "c.jpg").read_bytes() == images["ok/c.jpg"]
