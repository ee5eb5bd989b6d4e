"""Start-up stays light: ``--help`` loads no heavy library (pandas alone takes ~2.4 s on
a busy 2-core machine; the target is ``--help`` within 0.5 s). Checked in a fresh
interpreter through the console script's ``main``, by what lands in ``sys.modules``."""

from __future__ import annotations

from ct_io.testing import modules_loaded_by


def test_help_imports_no_heavy_library() -> None:
    loaded, _ = modules_loaded_by("ct-io", "ct_io.cli", ["--help"])
    assert loaded == []


def test_info_on_md_json_does_without_pandas(md_test) -> None:  # type: ignore[no-untyped-def]
    """An MD JSON needs no table library: only CCT files pull in pandas."""
    path = str(md_test / "md_output_v5a.json")
    loaded, out = modules_loaded_by(
        "ct-io", "ct_io.cli", ["info", path], ("pandas", "pyarrow", "torch")
    )
    assert loaded == []
    assert "detection confidence" in out
