"""Shared pieces of every console script: the app, shared options, one-line errors,
logging, the rich console."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from ct_io.errors import CamtrapError
from ct_io.redact import RedactingFilter, redact_text

if TYPE_CHECKING:
    from rich.progress import Progress

console = Console(stderr=False)
err_console = Console(stderr=True)

#: Exit codes: 0 ok, 1 the command found problems (e.g. validation), 2 usage or input error.
EXIT_PROBLEMS = 1
EXIT_ERROR = 2
#: Libraries whose debug logging is not the toolkit's (and prints signed requests).
QUIET_LOGGERS = (
    *("botocore", "boto3", "s3transfer", "urllib3", "azure", "requests"),
    *("aiobotocore", "s3fs", "adlfs", "gcsfs", "fsspec", "aiohttp"),
)

#: The flags of every command's worker count (``workers_option``).
WORKERS_FLAGS = ("--workers", "-w")


def make_app(help: str, *, root: bool = True) -> typer.Typer:
    """A ``ct-*`` console script's typer app, or (``root=False``) one of its command groups.

    Help when run without a command, rich markup in help texts, no shell-completion
    commands, no typer tracebacks (``run_cli`` prints errors); a root app takes
    ``-v/--verbose`` before its command.
    """
    app = typer.Typer(
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        add_completion=False,
    )
    if root:
        app.callback()(_set_up)
    return app


def _set_up(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    setup_logging(verbose)


def workers_option(help: str) -> Any:
    """``--workers/-w`` with ``help`` (what the workers are, the default)."""
    return typer.Option(*WORKERS_FLAGS, help=help)


def progress_bar() -> Progress:
    """A transient progress bar: what is done (each task's description), bar, N/M, time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=True)


def setup_logging(verbose: bool = False) -> None:
    """Log through rich to stderr (INFO, or DEBUG when verbose); credentials are masked."""
    handler = RichHandler(console=err_console, show_path=False, show_time=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    for noisy in QUIET_LOGGERS:  # their debug logs print request headers: keep them at warnings
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_cli(app: Callable[..., Any]) -> None:
    """Run a typer app; a ``CamtrapError`` prints as one line instead of a traceback.

    Set ``CAMTRAP_DEBUG=1`` to see tracebacks.
    """
    try:
        # without standalone mode click returns the code of `raise typer.Exit(code)`
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CamtrapError as exc:
        if os.environ.get("CAMTRAP_DEBUG"):
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(redact_text(str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(getattr(exc, "exit_code", EXIT_ERROR))
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/] — rerun the same command to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and aborts arrive here in non-standalone mode
        # typer vendors its own copy of click, so match click's classes by name
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "ClickException" in kinds:
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if "Abort" in kinds:
            if isinstance(exc.__context__, KeyboardInterrupt):
                err_console.print("[yellow]interrupted[/] — rerun the same command to resume")
                sys.exit(130)
            err_console.print("aborted")
            sys.exit(1)
        raise
