"""Fast JSON reading and atomic writing (msgspec), with one-line errors for bad files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec

from ct_io.atomic import write_bytes_atomic
from ct_io.errors import CamtrapError

_encoder = msgspec.json.Encoder()


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a missing or malformed file raises a one-line ``CamtrapError``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CamtrapError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise CamtrapError(f"{p}: is a folder, expected a JSON file") from None
    return decode_json(data, source=str(p))


def decode_json(data: bytes, *, source: str = "<json>") -> Any:
    """Parse JSON bytes, naming ``source`` and the position in the error."""
    if not data.strip():
        raise CamtrapError(f"{source}: empty file — expected JSON")
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise CamtrapError(f"{source}: {describe_decode_error(exc, data)}") from None


def describe_decode_error(exc: Exception, data: Any) -> str:
    """A one-line explanation of a JSON decode error, naming NaN/Infinity when that is the cause."""
    match = re.search(r"\(byte (\d+)\)", str(exc))
    if match:
        pos = int(match.group(1))
        for token in (b"NaN", b"Infinity", b"-Infinity"):
            if bytes(data[pos : pos + len(token)]) == token:
                return f"malformed JSON: {token.decode()} at byte {pos} is not valid JSON — write null for a missing number"
    return f"malformed JSON ({exc}) — is the file truncated?"


def encode_json(obj: Any, *, indent: int | None = 1) -> bytes:
    """Encode to JSON bytes (pretty-printed with ``indent`` spaces unless None)."""
    raw = _encoder.encode(obj)
    return msgspec.json.format(raw, indent=indent) if indent is not None else raw


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON atomically."""
    write_bytes_atomic(path, encode_json(obj, indent=indent) + b"\n")
