"""Atomic writes and safe handling of paths that come from input data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ct_io.atomic import (
    atomic_open,
    remove_stale_temp_files,
    write_bytes_atomic,
    write_text_atomic,
)
from ct_io.cct import empty_cct, write_cct
from ct_io.errors import UnsafePathError
from ct_io.jsonio import write_json
from ct_io.paths import safe_join, unsafe_mask, unsafe_reason
from ct_io.tables import write_csv


class BoomError(RuntimeError):
    pass


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(BoomError), atomic_open(target, "w") as fh:
        fh.write("half of the new cont")
        raise BoomError
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(BoomError), atomic_open(tmp_path / "new.bin", "wb") as fh:
        fh.write(b"x")
        raise BoomError
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_mid_write_is_also_clean(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as fh:
        fh.write("new")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_successful_write_replaces_and_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    write_text_atomic(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert leftovers(target.parent) == []


def test_atomic_open_rejects_append_and_read_modes(tmp_path):
    for mode in ("a", "r", "w+"):
        with pytest.raises(ValueError, match="supports"), atomic_open(tmp_path / "x", mode):
            pass


class Unencodable:
    pass


def test_writers_fail_atomically_on_unserializable_data(tmp_path):
    target = tmp_path / "data.json"
    target.write_text('{"old": true}')
    with pytest.raises(TypeError):
        write_json(target, {"x": Unencodable()})
    assert target.read_text() == '{"old": true}'
    assert leftovers(tmp_path) == []


def test_cct_and_csv_writers_fail_atomically_mid_stream(tmp_path, monkeypatch):
    import ct_io.cct as cct

    target = tmp_path / "cct.json"
    target.write_text("old")
    ds = empty_cct()

    def explode(*args, **kwargs):
        raise BoomError

    monkeypatch.setattr(cct, "_encode_rows", explode)
    ds.images = pd.DataFrame({"id": [1], "file_name": ["a.jpg"], "location": ["x"]})
    with pytest.raises(BoomError):
        write_cct(ds, target)
    assert target.read_text() == "old" and leftovers(tmp_path) == []

    csv = tmp_path / "t.csv"
    csv.write_text("old")
    with pytest.raises(AttributeError):
        write_csv("not a frame", csv)  # type: ignore[arg-type]
    assert csv.read_text() == "old" and leftovers(tmp_path) == []


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("a/b.jpg", None),
        ("..a/b..jpg", None),
        ("a/./b.jpg", None),
        ("../x", "'..' component"),
        ("a/../../x", "'..' component"),
        ("a\\..\\..\\x", "'..' component"),
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share\\x", "absolute path"),
        ("C:/x.jpg", "absolute path"),
        ("", "empty path"),
        ("   ", "empty path"),
        ("a\x00b", "NUL byte in path"),
    ],
)
def test_unsafe_reason(relative, reason):
    assert unsafe_reason(relative) == reason


def test_unsafe_mask_agrees_with_unsafe_reason():
    paths = ["a/b.jpg", "../x", "/abs", "C:\\x", "", "ok/..ok", "a/..", "x\x00"]
    mask = unsafe_mask(pd.Series(paths, dtype="str")).tolist()
    for path, flagged in zip(paths, mask, strict=True):
        if unsafe_reason(path):
            assert flagged, path  # the pre-filter never lets an unsafe path through


def test_safe_join_accepts_relative_paths(tmp_path):
    assert safe_join(tmp_path, "a/b.jpg") == tmp_path / "a" / "b.jpg"
    assert safe_join(tmp_path, "a\\b.jpg") == tmp_path / "a" / "b.jpg"


@pytest.mark.parametrize("relative", ["../x.jpg", "a/../../x.jpg", "/etc/passwd", "C:\\x.jpg", ""])
def test_safe_join_rejects_escapes(tmp_path, relative):
    with pytest.raises(UnsafePathError, match="refusing path"):
        safe_join(tmp_path, relative)


def test_safe_join_rejects_symlinks_that_escape(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="resolves outside"):
        safe_join(root, "link/x.jpg")
    (root / "inner").symlink_to(root / "sub_real")  # a link that stays inside is fine
    (root / "sub_real").mkdir()
    assert safe_join(root, "inner/x.jpg") == root / "inner" / "x.jpg"


def test_stale_temp_files_of_killed_writes_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = tmp_path / ".last.pt.x8k2_q.tmp"
    stale.write_bytes(b"half")
    keep = [tmp_path / "last.pt", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for p in keep:
        p.write_bytes(b"keep")
    (tmp_path / ".dir.tmp").mkdir()
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists() and all(p.exists() for p in keep)
    assert remove_stale_temp_files(tmp_path / "missing") == []
