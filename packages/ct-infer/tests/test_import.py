import subprocess
import sys

import ct_infer


def test_version_matches_lockstep() -> None:
    import ct_io

    assert ct_infer.__version__ == ct_io.__version__


def test_help_does_not_import_torch() -> None:
    code = "import sys; from ct_infer.cli import app; from typer.testing import CliRunner; r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_command_has_help_without_importing_torch() -> None:
    code = (
        "import sys, typer; from ct_infer.cli import app; from typer.testing import CliRunner\n"
        "names = sorted(typer.main.get_command(app).commands)\n"
        "for n in names:\n"
        "    r = CliRunner().invoke(app, [n, '--help'])\n"
        "    assert r.exit_code == 0 and 'Usage' in r.output, (n, r.output)\n"
        "print(','.join(names), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, imported = out.stdout.split()
    assert imported == "False"
    expected = {"backbones", "calibrate", "classify", "evaluate", "export", "info", "merge"}
    expected |= {"mislabeled", "report", "review", "run", "save-mislabeled"}
    assert set(names.split(",")) == expected
