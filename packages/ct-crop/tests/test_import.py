import subprocess
import sys

import ct_crop


def test_version_matches_lockstep() -> None:
    import ct_io

    assert ct_crop.__version__ == ct_io.__version__


def test_help_does_not_import_torch() -> None:
    code = "import sys; from ct_crop.cli import app; from typer.testing import CliRunner; r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
