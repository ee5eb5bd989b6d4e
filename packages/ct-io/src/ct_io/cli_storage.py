"""The image-root options shared by the commands that read full photos (``ct-crop crop``,
``ct-crop detect``, ``ct-infer run``): a folder or an object-store URL, plus
``--storage-option KEY=VALUE`` for the store's credentials and endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ct_io.storage import ImageStore

#: Help shared by every image-root argument and option.
IMAGE_ROOT_HELP = (
    "Folder the image paths are relative to, or an object-store URL read without a local "
    "copy: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, or an https:// "
    "base URL (an Azure container URL may carry a SAS token)."
)

StorageOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        help="Object-store option KEY=VALUE (repeatable): profile, region, endpoint_url, "
        "anon=true (S3); account_name, sas_token (Azure); token (GCS).",
    ),
]


def open_image_root(root: str, storage_option: list[str] | None = None) -> Path | ImageStore:
    """A local folder as a ``Path`` (today's code path, no fsspec), or the remote store."""
    from ct_io.storage import is_remote

    if not is_remote(root):
        if storage_option:
            from ct_io.errors import CamtrapError

            raise CamtrapError(
                "--storage-option applies only to an s3://, gs://, az:// or https:// root"
            )
        return Path(root.removeprefix("file://"))
    from ct_io.options import parse_key_values
    from ct_io.storage import open_store

    return open_store(root, storage_options=parse_key_values(storage_option or []))
