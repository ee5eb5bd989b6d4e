"""Start-up stays light: ``--help`` loads no heavy library (pandas alone takes ~2.4 s on
a busy 2-core machine; the target is ``--help`` within 0.5 s). Checked in a fresh
interpreter through the console script's ``main``, by what lands in ``sys.modules``."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "numpy", "pyarrow", "PIL", "torch")


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['ct-io', '--help']\n"
        "from ct_io.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_info_on_md_json_does_without_pandas(md_test) -> None:  # type: ignore[no-untyped-def]
    """An MD JSON needs no table library: only CCT files pull in pandas."""
    code = (
        "import sys\n"
        f"sys.argv = ['ct-io', 'info', {str(md_test / 'md_output_v5a.json')!r}]\n"
        "from ct_io.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "detection confidence" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
