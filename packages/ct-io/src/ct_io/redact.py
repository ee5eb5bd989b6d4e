"""Keep credentials out of everything the toolkit writes or prints.

Credentials reach the toolkit as URL user-info (``https://user:pass@host``), signed URL
query parameters (Azure SAS ``sig``, S3 presigned ``X-Amz-Signature`` /
``X-Amz-Credential`` / ``X-Amz-Security-Token``, ``token``, ``key``...), option and
config keys that name a secret (``api_key``, ``password``, ``sas_token``...), attrs option
fields marked with :func:`secret_field`, and environment variables (``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``COMET_API_KEY``...). Writers of logs, error messages, failure
logs and saved configs pass their text through :func:`redact_text` or their data through
:func:`redact_mapping`; the values used to authenticate are never changed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

#: What replaces a secret.
MASK = "***"

#: Query parameters that carry a credential (compared case-insensitively).
SECRET_PARAMS = frozenset(
    {
        "sig",  # Azure SAS signature
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "signature",
        "awsaccesskeyid",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "api_key",
        "apikey",
        "key",
        "password",
        "secret",
        "client_secret",
        "sas",
        "sas_token",
    }
)

#: Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "COMET_API_KEY",
    "HF_TOKEN",
    "GITHUB_TOKEN",
)

#: Mapping keys whose values are secrets (normalised: lower case, ``-`` → ``_``).
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|secret|token|api_?key|access_?key|account_?key|private_?key"
    r"|credentials?|sas(_?token)?|sig|signature|connection_?string|authorization)$"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"(?<=://)[^/?#\s'\"<>`]*@")
_PARAM = re.compile(r"(?<=[?&;])([A-Za-z0-9_.-]+)=([^&\s'\"<>`#]*)")
#: HTTP headers that carry credentials, as libraries print them in debug logs.
_HEADER = re.compile(
    r"(?i)(['\"]?(?:authorization|proxy-authorization|x-amz-security-token|x-amz-credential"
    r"|x-amz-signature|cookie)['\"]?\s*[:=]\s*b?)(['\"])(.*?)\2"
)
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
_MIN_SECRET_LEN = 8


def secret_field(**kwargs: Any) -> Any:
    """An attrs field whose value is a secret: left out of saved configs and logs."""
    metadata = {**kwargs.pop("metadata", {}), "secret": True}
    return attrs.field(metadata=metadata, repr=False, **kwargs)


def secret_fields(cls: type | None) -> set[str]:
    """Names of the fields of attrs class ``cls`` marked with :func:`secret_field`."""
    if cls is None or not attrs.has(cls):
        return set()
    return {f.name for f in attrs.fields(cls) if f.metadata.get("secret")}


def plugin_secret_keys(pm: Any = None) -> set[str]:
    """Option names that any registered plugin marks with :func:`secret_field`."""
    from ct_io.errors import CamtrapError
    from ct_io.hookspecs import KINDS
    from ct_io.plugins import collect

    keys: set[str] = set()
    for kind in KINDS:
        try:
            registry = collect(kind, pm)
        except CamtrapError:  # a broken plugin is reported where it is used
            continue
        for reg in registry:
            keys |= secret_fields(reg.options)
    return keys


def is_secret_key(name: object) -> bool:
    """Whether a mapping key names a secret (``api_key``, ``AWS_SECRET_ACCESS_KEY``, ``sas_token``...)."""
    key = str(name).strip().lower().replace("-", "_")
    return key in SECRET_PARAMS or bool(_SECRET_KEY.search(key))


def redact_url(url: str) -> str:
    """``url`` without user-info and with credential query parameters masked."""
    return _PARAM.sub(_mask_param, _USERINFO.sub(MASK + "@", url, count=1))


def redact_text(text: str, *, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials masked: in every URL it holds, AWS access key ids, the
    values of the environment's secret variables and the given ``secrets``."""
    if not text:
        return text
    out = _URL.sub(lambda m: _USERINFO.sub(MASK + "@", m.group(0), count=1), text)
    out = _PARAM.sub(_mask_param, out)
    out = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", out)
    out = _AWS_KEY_ID.sub(MASK, out)
    for value in sorted({*env_secrets(), *secrets}, key=len, reverse=True):
        if len(value) >= _MIN_SECRET_LEN:
            out = out.replace(value, MASK)
    return out


def redact_mapping(data: Any, *, secret_keys: Iterable[str] = ()) -> Any:
    """A copy of JSON-like ``data`` with the values of secret keys masked (see
    :func:`is_secret_key`, plus ``secret_keys``) and every string passed through
    :func:`redact_text`."""
    extra = {k.lower() for k in secret_keys}
    secrets = env_secrets()

    def walk(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: (MASK if node_is_secret(k, v) else walk(v)) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return type(node)(walk(v) for v in node)
        if isinstance(node, str):
            return redact_text(node, secrets=secrets)
        return node

    def node_is_secret(key: object, value: Any) -> bool:
        if value is None or value == "" or isinstance(value, bool):
            return False
        return is_secret_key(key) or str(key).lower() in extra

    return walk(data)


def env_secrets() -> set[str]:
    """The values of the secret environment variables now set."""
    return {v for name in SECRET_ENV_VARS if (v := os.environ.get(name, "").strip())}


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _mask_param(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={MASK}" if name.lower() in SECRET_PARAMS else match.group(0)
