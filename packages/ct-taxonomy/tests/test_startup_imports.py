"""Start-up stays light: ``--help`` loads no heavy library (pandas alone takes ~2.4 s on
a busy 2-core machine; the target is ``--help`` within 0.5 s). Checked in a fresh
interpreter through the console script's ``main``, by what lands in ``sys.modules``."""

from __future__ import annotations

from ct_io.testing import modules_loaded_by


def test_help_imports_no_heavy_library() -> None:
    loaded, _ = modules_loaded_by("ct-taxonomy", "ct_taxonomy.cli", ["--help"])
    assert loaded == []
