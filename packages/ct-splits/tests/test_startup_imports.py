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
        "sys.argv = ['ct-splits', '--help']\n"
        "from ct_splits.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
