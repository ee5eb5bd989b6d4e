"""Credentials never land in what the toolkit writes or prints.

Recognisable fake secrets are planted where users put real ones: AWS keys in the
environment and in a named profile (the ``animl`` source, against a moto S3 server),
an Azure-style SAS token and URL user-info on every LILA URL (index, metadata, image
base URL; a local HTTP server that answers some files 403 / 500 so failures get
logged), COMET_API_KEY in the environment and in a run folder's ``.env``. The real
commands then run (``ct-io lila download``, ``ct-io lila datasets``, ``ct-io animl
download``, ``ct-train run`` through training, bundle, evaluation and the HTML report),
and every file they wrote plus their stdout/stderr is searched for the secrets.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ct_io import hookimpl

from .conftest import FileServer, Result, assert_no_traceback, run_cli

pytestmark = pytest.mark.network_server

AWS_KEY_ID = "AKIAFAKEFAKEFAKE1234"
AWS_SECRET = "wJalrXUtnFEMI/FAKE/bPxRfiCYFAKESECRETKEY"
AWS_TOKEN = "FwoGZXIvYXdzEFAKESESSIONTOKEN0123456789"
PROFILE_KEY_ID = "AKIAFAKEPROFILE00042"
PROFILE_SECRET = "profileFAKESECRETvalue0123456789abcdef"
PROFILE_TOKEN = "profileFAKESESSIONtoken0123456789"
SAS_SIG = "FAKESIGNATURE0123456789abcdefXYZ"
URL_PASSWORD = "hunter2FAKEPASSWORD"
URL_TOKEN = "tokFAKEQUERYTOKEN12345"
COMET_KEY = "cometFAKEKEY0123456789abcdef"
SECRETS = (
    AWS_KEY_ID,
    AWS_SECRET,
    AWS_TOKEN,
    PROFILE_KEY_ID,
    PROFILE_SECRET,
    PROFILE_TOKEN,
    SAS_SIG,
    URL_PASSWORD,
    URL_TOKEN,
    COMET_KEY,
)
SAS = f"sv=2021-08-06&se=2030-01-01T00%3A00%3A00Z&sr=c&sp=rl&sig={SAS_SIG}"


#: Verbatim copies of downloaded input files (the LILA index the user's server sent holds
#: its own signed URLs): a cache of the input, not something the toolkit wrote.
INPUT_CACHES = ("_lila_metadata",)


def leaks(folders: list[Path], *outputs: Result) -> list[str]:
    """Every (place, secret) where a planted secret shows up."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if any(part in INPUT_CACHES for part in path.parts):
                continue
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {s}" for s in SECRETS if s.encode() in data]
    for i, out in enumerate(outputs):
        found += [f"output {i}: {s}" for s in SECRETS if s in out.text]
    return found


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# ------------------------------------------------------------------ a fake, signed LILA


class SignedLila:
    """A LILA-style dataset (the demo source's images, boxes and labels) on a local HTTP
    server, behind URLs that carry user-info, a token and a SAS query string."""

    def __init__(self, root: Path) -> None:
        from ct_io.sources import fetch

        got = fetch("demo", root / "src", {"num_images": 40, "num_locations": 5})
        cct = json.loads(got.cct_path.read_text())
        self.server = FileServer().start()
        host = f"127.0.0.1:{self.server.port}"
        self.signed = f"http://reader:{URL_PASSWORD}@{host}"
        for image in cct["images"]:
            data = (got.images_dir / image["file_name"]).read_bytes()
            self.server.files[f"/imgs/{image['file_name']}"] = data
        first, second = (im["file_name"] for im in cct["images"][:2])
        self.server.always[f"/imgs/{first}"] = 403  # a forbidden file (SAS without read)
        self.server.always[f"/imgs/{second}"] = 500  # a server that gives up
        # hostile file names from the remote metadata: never fetched, counted as unsafe
        base = cct["images"][2]
        for k, name in enumerate(["../../evil.jpg", str(root / "evil_abs.jpg")]):
            cct["images"].append({**base, "id": f"hostile{k}", "file_name": name})
        self.server.files["/meta/demo.json"] = json.dumps(cct).encode()
        index = io.StringIO()
        writer = csv.writer(index)
        writer.writerow(["name", "short_name", "metadata_url_gcp", "image_base_url_gcp"])
        writer.writerow(
            [
                "Demo Cams",
                "demo",
                f"{self.signed}/meta/demo.json?{SAS}",
                f"{self.signed}/imgs?{SAS}",
            ]
        )
        self.server.files["/meta/index.csv"] = index.getvalue().encode()
        self.index_url = f"{self.signed}/meta/index.csv?token={URL_TOKEN}"
        self.files = len(cct["images"])


@pytest.fixture(scope="module")
def lila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedLila]:
    fake = SignedLila(tmp_path_factory.mktemp("signed-lila"))
    yield fake
    fake.server.stop()


@pytest.fixture
def secret_env(tmp_path: Path) -> dict[str, str]:
    """AWS and Comet secrets in the environment, no real AWS config."""
    return {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_SESSION_TOKEN": AWS_TOKEN,
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "COMET_API_KEY": COMET_KEY,
    }


def test_lila_download_with_signed_urls_logs_failures_without_the_signature(
    lila: SignedLila, tmp_path: Path, secret_env: dict[str, str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = tree(tmp_path)
    args = ["ct-io", "-v", "lila", "download", "out", "-d", "demo", "--cloud", "gcp"]
    args += ["--index", lila.index_url, "--retries", "0", "--threads", "2"]
    result = run_cli(args, cwd=work, env=secret_env)
    assert_no_traceback(result)
    assert result.code == 1, result.text[-2000:]  # some files failed: exit 1, counted
    failures = [
        json.loads(line)
        for line in (work / "out" / "demo" / "download_failures.jsonl").read_text().splitlines()
    ]
    kinds = sorted(f["kind"] for f in failures)
    assert kinds == ["forbidden", "gave_up", "unsafe_path", "unsafe_path"], failures
    signed = [f["url"] for f in failures if f["kind"] in ("forbidden", "gave_up")]
    assert all("sig=***" in url and "***@" in url for url in signed), signed
    # the SAS query reached the server with every request: all other images landed
    landed = [p for p in (work / "out" / "demo").rglob("*.jpg")]
    assert len(landed) == lila.files - 4
    # hostile file names wrote nothing outside the output folder
    assert tree(tmp_path) - before <= {"work/" + p for p in tree(work)}
    assert not list(tmp_path.parent.rglob("evil*.jpg"))

    listing = run_cli(
        ["ct-io", "lila", "datasets", "--index", f"{lila.signed}/meta/gone.csv?{SAS}",
         "--metadata-dir", "cache"],
        cwd=work, env=secret_env,
    )  # fmt: skip
    assert_no_traceback(listing)
    assert listing.code == 2 and "HTTP 404" in listing.err, listing.text
    assert "sig=***" in listing.err
    assert leaks([work], result, listing) == []


# ------------------------------------------------------------------ animl on moto S3


@pytest.fixture
def animl_bucket(moto_server: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(
        Bucket="animl-sec", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    objects = {f"cam1/{i}.jpg": bytes([i]) * 100 for i in range(3)}
    for key, data in objects.items():
        s3.put_object(Bucket="animl-sec", Key=key, Body=data)
    return objects


def animl_export(path: Path, keys: list[str]) -> Path:
    images = [
        {"id": f"i{k}", "file_name": f"f{k}.jpg", "original_relative_path": key,
         "width": 10, "height": 10, "location": "L"}
        for k, key in enumerate(keys)
    ]  # fmt: skip
    anns = [{"id": f"a{k}", "image_id": f"i{k}", "category_id": 1} for k in range(len(keys))]
    path.write_text(
        json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "fox"}]}
        )
    )
    return path


def test_animl_download_never_echoes_aws_credentials(
    moto_server: str, animl_bucket: dict[str, bytes], tmp_path: Path, secret_env: dict[str, str]
) -> None:
    keys = [*animl_bucket, "cam1/missing.jpg", "../../evil.jpg", "/abs/evil.jpg"]
    export = animl_export(tmp_path / "sec_cct.json", keys)
    before = tree(tmp_path)
    args = ["ct-io", "-v", "animl", "download", str(export), "out", "--bucket", "animl-sec"]
    args += ["--endpoint-url", moto_server, "--profile", "", "--retries", "0", "--threads", "2"]
    from_env = run_cli(args, cwd=tmp_path, env=secret_env)
    assert_no_traceback(from_env)
    assert from_env.code == 1, from_env.text[-2000:]
    failures = (tmp_path / "out" / "sec" / "download_failures.jsonl").read_text()
    assert failures.count('"unsafe_path"') == 2 and failures.count('"not_found"') == 1
    assert sorted(p.name for p in (tmp_path / "out" / "sec" / "cam1").iterdir()) == [
        "0.jpg",
        "1.jpg",
        "2.jpg",
    ]
    assert tree(tmp_path) - before <= {p for p in tree(tmp_path) if p.startswith("out")}

    # a named profile holding the keys; a bucket that does not exist stops the run
    (tmp_path / "aws_credentials").write_text(
        f"[animl]\naws_access_key_id = {PROFILE_KEY_ID}\naws_secret_access_key = {PROFILE_SECRET}\n"
        f"aws_session_token = {PROFILE_TOKEN}\n"
    )
    profile_env = {**secret_env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws_credentials")}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        profile_env[var] = ""
    args = ["ct-io", "-v", "animl", "download", str(export), "out2", "--bucket", "no-such"]
    args += ["--endpoint-url", moto_server, "--profile", "animl", "--retries", "0"]
    from_profile = run_cli(args, cwd=tmp_path, env=profile_env)
    assert_no_traceback(from_profile)
    assert from_profile.code == 2 and "check the bucket name" in from_profile.err
    assert leaks([tmp_path / "out", tmp_path / "out2"], from_env, from_profile) == []


# ------------------------------------------------------------------ ct-train run folders


def train_config(lila: SignedLila, loggers: list[dict[str, Any]]) -> dict[str, Any]:
    source = {
        "dataset": "demo",
        "cloud": "gcp",
        "index": lila.index_url,
        "metadata": f"{lila.signed}/meta/demo.json?{SAS}",
        "retries": 0,
        "threads": 2,
    }
    return {
        "sources": [{"name": "lila", "options": source}],
        "detector": {"enabled": False},
        "data": {"batch_size": 8, "num_workers": 0, "image_size": 32},
        "model": {"backbone": "tiny-sec", "pretrained": "none"},
        "train": {"epochs": 1, "amp": "off", "early_stop": {"patience": 0}},
        "loggers": loggers,
        "crop": {"size": 32, "workers": 1},
        "table": {"min_locs": 1},
        "splits": {"trials": 100},
        "export": {"formats": []},
    }


class TinyBackbone:
    """A tiny CNN registered like any plugin (timm would cost seconds to import)."""

    @hookimpl
    def ct_register_backbones(self, register: Any) -> None:
        import torch

        from ct_infer.backbones import BuiltBackbone, Preprocessing

        def make(num_classes: int, pretrained: object) -> BuiltBackbone:
            net = torch.nn.Sequential(
                torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
                torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(4, num_classes),
            )
            return BuiltBackbone(net, Preprocessing(32))

        register("tiny-sec", make, description="tiny CNN for the credentials test")


@pytest.fixture
def tiny_backbone() -> Iterator[None]:
    from ct_io.plugins import get_plugin_manager

    shared = get_plugin_manager()
    name = shared.register_plugin(TinyBackbone(), "tiny-sec", distribution="tests")
    yield
    shared.unregister_plugin(name)


def ct_train(args: list[str], capfd: pytest.CaptureFixture[str]) -> Result:
    """``ct-train ARGS`` in this process (its console-script entry point, one-line errors
    included), so the tiny test backbone is registered."""
    from ct_train.cli import main

    argv = sys.argv
    sys.argv = ["ct-train", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    out, err = capfd.readouterr()
    return Result(code, out, err)


def test_ct_train_run_folder_holds_no_credentials(
    lila: SignedLila,
    tmp_path: Path,
    secret_env: dict[str, str],
    tiny_backbone: None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name, value in secret_env.items():
        monkeypatch.setenv(name, value)
    run_dir = tmp_path / "runs" / "tiny" / "sec"
    run_dir.mkdir(parents=True)
    (run_dir / ".env").write_text(f"COMET_API_KEY={COMET_KEY}\nCOMET_WORKSPACE=fake\n")
    config = run_dir / "config.yml"
    comet = [{"name": "console", "options": {"progress": False}}, {"name": "comet"}]
    config.write_text(yaml.safe_dump(train_config(lila, comet)))
    # comet enabled but not installed (or offline): the train stage stops with one line
    with_comet = ct_train(["run", str(config)], capfd)
    assert_no_traceback(with_comet)
    assert with_comet.code == 2, with_comet.text[-3000:]
    assert "comet" in with_comet.err

    config.write_text(yaml.safe_dump(train_config(lila, comet[:1])))
    done = ct_train(["run", str(config)], capfd)
    assert_no_traceback(done)
    assert done.code == 0, done.text[-3000:]
    resolved = yaml.safe_load((run_dir / "resolved_config.yml").read_text())
    index = resolved["sources"][0]["options"]["index"]
    assert "token=***" in index and "***@" in index, index
    assert list(run_dir.rglob("*.safetensors")) and list(run_dir.rglob("*.html"))
    assert (run_dir / "data" / "demo" / "download_failures.jsonl").is_file()
    written = [p for p in run_dir.iterdir() if p.name not in (".env", "config.yml")]
    assert leaks(written, with_comet, done) == []
    for path in written:
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in SECRETS), path


def test_redaction_helper_masks_what_the_writers_pass_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from attrs import define

    from ct_io.redact import redact_mapping, redact_text, redact_url, secret_field, secret_fields

    monkeypatch.setenv("COMET_API_KEY", COMET_KEY)
    url = f"https://u:{URL_PASSWORD}@acct.blob.core.windows.net/c/x.jpg?{SAS}&X-Amz-Credential={AWS_KEY_ID}%2F2024&keep=1"
    clean = redact_url(url)
    assert not any(s in clean for s in SECRETS) and "keep=1" in clean and "sv=2021-08-06" in clean
    text = f"failed: GET {url} (key {COMET_KEY}, id {AWS_KEY_ID})"
    assert not any(s in redact_text(text) for s in SECRETS)
    debug = f"headers={{'X-Amz-Security-Token': b'{PROFILE_TOKEN}', 'Authorization': b'AWS4 Credential={PROFILE_KEY_ID}/x, Signature=ab'}}"
    assert not any(s in redact_text(debug) for s in SECRETS), redact_text(debug)

    @define
    class Opts:
        user: str = "me"
        passphrase: str = secret_field(default="")

    assert secret_fields(Opts) == {"passphrase"}
    data = {"a": [{"api_key": COMET_KEY, "passphrase": "x" * 12, "profile": "animl"}]}
    masked = redact_mapping(data, secret_keys=secret_fields(Opts))
    assert masked == {"a": [{"api_key": "***", "passphrase": "***", "profile": "animl"}]}
    assert os.environ["COMET_API_KEY"] == COMET_KEY  # the values used to authenticate stay
