"""``ct-splits`` console script."""

from __future__ import annotations

import typer

from ct_io.clitools import run_cli, setup_logging

app = typer.Typer(
    help="ct-splits: part of the camtrap classifier toolkit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
