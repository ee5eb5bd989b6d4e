"""Lists of the images a selection needs, for external copy tools, and back.

The seed's ``json_to_azcopy_list.py``: from a selection (``queried_images.json`` or a CCT
file) write one ``<dataset>_images.txt`` per dataset, either as ``paths`` relative to the
dataset's image folder (AzCopy's ``--list-of-files``, rclone's ``--files-from``) or as
full ``urls`` (``gsutil -m cp -I``, ``wget -i``, ``aria2c -i``), for the LILA image base
URL of any cloud (Azure, GCP, AWS) or one given per dataset. A query string on a base URL
(an Azure SAS token) is never written to a list: give the same base URL when downloading.

:func:`plan_list_download` reads such a list back — full ``http(s)``, ``gs://`` or
``s3://`` URLs, or paths under a base URL — for the download engine, keeping each file's
path under the base as its place on disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from attrs import frozen

from ct_io.errors import CamtrapError
from ct_io.paths import unsafe_reason

if TYPE_CHECKING:
    from ct_io.sources.download import Transport

ListFormat = Literal["urls", "paths"]
LIST_SUFFIX = "_images.txt"
_SAFE = "/:@!$&'()*+,;=-._~"


@frozen
class DatasetList:
    """One dataset's files (relative to its image folder) and that folder's URL."""

    name: str
    base_url: str
    files: tuple[str, ...]


# ---------------------------------------------------------------- selections


def selection_files(path: Path, dataset: str | None = None) -> dict[str, list[str]]:
    """Dataset → image paths relative to its image folder, from ``queried_images.json``
    (keys ``<dataset>/<file>``) or a CCT file (a combined CCT's ``dataset`` column and
    ``NAME/`` prefixes; else one dataset: ``dataset``, its ``info.lila_dataset``, or the
    file name)."""
    from ct_io.detect_format import sniff_kind

    if not Path(path).is_file():
        raise CamtrapError(f"{path}: file not found")
    if sniff_kind(path) != "cct":
        from ct_io.tables import read_queried_images

        out: dict[str, list[str]] = {}
        for key, image in read_queried_images(path).items():
            prefix = image.dataset + "/"
            out.setdefault(image.dataset, []).append(
                key[len(prefix) :] if key.startswith(prefix) else key
            )
        return out
    from ct_io.cct import read_cct
    from ct_io.sources.common import dataset_name_from_file

    ds = read_cct(path)
    files = ds.images["file_name"].astype(str)
    if "dataset" in ds.images.columns and dataset is None:
        out = {}
        for name, file in zip(ds.images["dataset"].astype(str), files, strict=True):
            prefix = name + "/"
            out.setdefault(name, []).append(
                file[len(prefix) :] if file.startswith(prefix) else file
            )
        return out
    info = ds.info if isinstance(ds.info, dict) else {}
    name = dataset or str(info.get("lila_dataset") or "") or dataset_name_from_file(path)
    return {name: files.tolist()}


def lila_base_urls(names: Sequence[str], cloud: str, index: str, cache_dir: Path) -> dict[str, str]:
    """Each dataset's image folder URL on ``cloud``, from the LILA index (full or short name)."""
    from ct_io.sources.lila_meta import find_dataset, image_base_url, read_index

    table = read_index(index, cache_dir)
    return {name: image_base_url(find_dataset(table, name), cloud) for name in names}


def dataset_lists(
    files: Mapping[str, Sequence[str]], base_urls: Mapping[str, str]
) -> list[DatasetList]:
    """Pair each dataset's files with its base URL; a dataset without one is an error."""
    missing = [name for name in files if name not in base_urls]
    if missing:
        raise CamtrapError(
            f"no image URL for dataset(s) {', '.join(missing)}: name LILA datasets, or give "
            f"--base-url {missing[0]}=URL"
        )
    return [DatasetList(name, base_urls[name], tuple(dict.fromkeys(files[name]))) for name in files]


def join_url(base_url: str, path: str) -> str:
    """``base_url`` (its query string dropped) joined with the quoted ``path``."""
    base = base_url.partition("?")[0]
    return (base if base.endswith("/") else base + "/") + quote(path, safe=_SAFE)


def write_lists(lists: Sequence[DatasetList], out_dir: Path, fmt: ListFormat) -> list[Path]:
    """``<out_dir>/<dataset>_images.txt`` per dataset, one file per line (atomically)."""
    from ct_io.atomic import write_text_atomic

    written = []
    for item in lists:
        bad = next((f for f in item.files if unsafe_reason(f)), None)
        if bad is not None:
            raise CamtrapError(f"{item.name}: refusing image path {bad!r}: {unsafe_reason(bad)}")
        lines = [join_url(item.base_url, f) if fmt == "urls" else f for f in item.files]
        path = Path(out_dir) / f"{_safe_name(item.name)}{LIST_SUFFIX}"
        write_text_atomic(path, "".join(line + "\n" for line in lines))
        written.append(path)
    return written


def _safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "dataset"


# ---------------------------------------------------------------- reading a list back


@frozen
class ListDownload:
    """What to fetch: the transport's base and, per file, its key and place on disk."""

    base_url: str
    keys: tuple[str, ...]
    dests: tuple[str, ...]


def read_list(path: str | os.PathLike[str]) -> list[str]:
    """The entries of a list file: one per line; blank lines and ``#`` comments skipped."""
    p = Path(path)
    if not p.is_file():
        raise CamtrapError(f"{p}: file not found")
    lines = (line.strip() for line in p.read_text(encoding="utf-8-sig").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _public_url(url: str) -> str:
    """``gs://bucket/key`` → its public HTTPS URL; other URLs unchanged."""
    if url.startswith("gs://"):
        return "https://storage.googleapis.com/" + url[len("gs://") :]
    return url


def plan_list_download(entries: Sequence[str], base_url: str | None = None) -> ListDownload:
    """Keys and destinations for ``entries``: paths under ``base_url``, or full URLs (their
    path below ``base_url`` when given, else below the folder all of them share)."""
    from urllib.parse import unquote

    if not entries:
        raise CamtrapError("the list names no file")
    urls = [_public_url(e) for e in entries]
    full = ["://" in u for u in urls]
    if any(full) and not all(full):
        raise CamtrapError("the list mixes full URLs and relative paths — give one kind")
    if not all(full):
        if base_url is None:
            raise CamtrapError(
                "the list holds paths, not URLs: give --base-url, the folder URL they are under"
            )
        return _checked(_public_url(base_url), urls, urls)  # paths as written (azcopy lists)
    plain = [u.partition("?")[0] for u in urls]
    if base_url is not None:
        root = _public_url(base_url).partition("?")[0]
        root = root if root.endswith("/") else root + "/"
        outside = next((u for u in plain if not u.startswith(root)), None)
        if outside is not None:
            raise CamtrapError(f"{outside} is not under --base-url {root}")
        base = _public_url(base_url)
    else:
        root = _common_folder(plain)
        if root.count("/") < 4:  # scheme://host/ is no folder to keep paths under
            raise CamtrapError("the URLs share no folder: give --base-url")
        base = root
    rel = [unquote(u[len(root) :]) for u in plain]
    return _checked(base, rel, rel)


def _common_folder(urls: Sequence[str]) -> str:
    """The longest ``.../`` folder every URL lies in (compared by path component)."""
    parts = [u.split("/")[:-1] for u in urls]
    common: list[str] = []
    for column in zip(*parts, strict=False):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return "/".join(common) + "/"


def list_transport(plan: ListDownload, threads: int) -> tuple[Transport, list[str]]:
    """The transport for the plan's base URL and the keys it fetches: HTTP(S) (a query
    string on the base is sent with every request), or S3 for ``s3://bucket/prefix/``
    (credentials from boto3's default chain)."""
    if plan.base_url.startswith("s3://"):
        from ct_io.sources.transports import S3Transport

        bucket, _, prefix = plan.base_url[len("s3://") :].partition("/")
        prefix = prefix.partition("?")[0]
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        return S3Transport(bucket, max_connections=threads), [prefix + k for k in plan.keys]
    from ct_io.sources.transports import HttpTransport

    base, sep, query = plan.base_url.partition("?")
    base = base if base.endswith("/") else base + "/"
    return HttpTransport(base + sep + query, max_connections=threads), list(plan.keys)


def _checked(base: str, keys: list[str], dests: list[str]) -> ListDownload:
    for dest in dests:
        if unsafe_reason(dest):
            raise CamtrapError(f"refusing list entry {dest!r}: {unsafe_reason(dest)}")
    return ListDownload(base, tuple(keys), tuple(dests))
