"""``ct-infer review``: a local web page to check and correct labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import console


def review_cmd(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="A ct-train run folder, an evaluation folder (outputs_<split>.csv.gz), and/or "
            "an MD JSON with classifications from run / merge.",
            metavar="RUN_OR_FILES...",
        ),
    ],
    margin: Annotated[
        float,
        typer.Option(
            "--margin",
            help="Mislabel candidates: p(predicted) - p(label) at least this (when the "
            "evaluation folder has no mislabeled_candidates_<split>.csv).",
        ),
    ] = 0.95,
    below: Annotated[
        float,
        typer.Option("--below", help="Low-confidence detections: best class below this."),
    ] = 0.5,
    detection_threshold: Annotated[
        float,
        typer.Option("--detection-threshold", help="Detections with at least this confidence."),
    ] = 0.2,
    categories: Annotated[
        list[str] | None,
        typer.Option("--category", help="Detection categories to review (default animal)."),
    ] = None,
    crops_dir: Annotated[
        Path | None, typer.Option("--crops-dir", help="Crops folder (default: the run's).")
    ] = None,
    dataset_csv: Annotated[
        Path | None,
        typer.Option("--dataset-csv", help="classification_ds.csv (default: the run's)."),
    ] = None,
    mislabeled_dir: Annotated[
        Path | None,
        typer.Option(
            "--mislabeled-dir",
            help="Known-mislabeled lists to write (default: the run's labels.mislabeled, "
            "else <run>/mislabeled, which ct-train run applies).",
        ),
    ] = None,
    images_dir: Annotated[
        Path | None,
        typer.Option("--images-dir", help="Photos folder of an MD JSON (default: its folder)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Corrected MD JSON to write (default: <name>.reviewed.json)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you mean it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CT_REVIEW_TOKEN",
            help="Token the URL carries (default: a new random one).",
            show_envvar=True,
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
) -> None:
    """Check and correct labels on a local web page: mislabel candidates, any label's crops
    by prediction, low-confidence detections. Every decision is saved as it is made."""
    try:
        from ct_infer.webreview.app import create_app
    except ImportError as exc:
        from ct_io.errors import CamtrapError

        raise CamtrapError(
            f"ct-infer review needs its web server ({exc.name} is missing): "
            "pip install 'ct-infer[review]'"
        ) from None
    from ct_infer.webreview.server import allowed_hosts, new_token, serve
    from ct_infer.webreview.session import ReviewOptions, open_session

    session = open_session(
        inputs,
        ReviewOptions(
            margin=margin,
            below=below,
            detection_threshold=detection_threshold,
            categories=tuple(categories or ("animal",)),
            crops_dir=crops_dir,
            dataset_csv=dataset_csv,
            mislabeled_dir=mislabeled_dir,
            images_dir=images_dir,
            output=output,
        ),
    )
    for q in session.summary()["queues"]:
        console.print(
            f"  {q['title']}: {q['decided']} of {q['count']} decided",
            highlight=False,
            soft_wrap=True,
        )
    for where in session.summary()["outputs"]:
        console.print(f"decisions go to {where}", highlight=False, soft_wrap=True)
    secret = token or new_token()

    def announce(base: str) -> None:
        url = f"{base}/?token={secret}"
        console.print(
            f"review page: [bold]{url}[/]  (Ctrl+C stops; nothing is lost)",
            highlight=False,
            soft_wrap=True,
        )
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    serve(
        lambda actual: create_app(session, secret, allowed_hosts(host, actual), actual),
        host,
        port,
        announce,
    )
