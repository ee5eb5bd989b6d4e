"""``ct-infer review`` end to end: the real command serving the page, a real Chromium
(Playwright, the system's browser) clicking and typing through a review, reloads, a
killed server, and the files the decisions land in; then the hostile requests.

Set ``CAMTRAP_WRITE_DOCS_IMG=1`` to refresh the screenshots of docs/review.md.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ct_taxonomy.mislabeled import read_mislabeled_dir

TOKEN = "test-token-" + "x" * 32
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the review tests need the system Chromium (apt-get install chromium)"
    return found


class Server:
    """``ct-infer review ARGS`` in a subprocess; ``url`` is the address it printed."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ct_infer.cli", "review", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "CT_REVIEW_TOKEN": TOKEN, "COLUMNS": "400"},
        )
        assert self.proc.stdout is not None
        seen = []
        for line in self.proc.stdout:
            seen.append(line)
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self.base = m.group(0)
                self.url = f"{self.base}/?token={TOKEN}"
                self.printed = "".join(seen)
                return
        raise AssertionError("the review server did not start:\n" + "".join(seen))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def wait_ready(page: object, queue: str) -> None:
    page.wait_for_selector(f"body[data-ready='{queue}']")  # type: ignore[attr-defined]


def wait_saved(page: object) -> None:
    # a selector, not a script: the page's Content-Security-Policy forbids eval
    page.wait_for_selector("#status:has-text('all saved')")  # type: ignore[attr-defined]


def shot(page: object, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    assert path.stat().st_size > 10_000
    if os.environ.get("CAMTRAP_WRITE_DOCS_IMG") == "1":
        shutil.copyfile(path, DOCS_IMG / name)


def decided(page: object) -> str:
    return page.inner_text("#progress")  # type: ignore[attr-defined]


def test_review_session_in_chromium(
    synthetic_run: Path, classified_md: Path, md_dir: Path, browser: object, tmp_path: Path
) -> None:
    args = [str(synthetic_run), str(classified_md), "--images-dir", str(md_dir / "images")]
    server = Server(args)
    try:
        assert "decisions go to known-mislabeled lists in" in server.printed
        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        page.goto(server.url)
        assert "token" not in page.url  # moved into a cookie
        page.wait_for_selector("body[data-ready]")
        page.select_option("#queue", "label-antelope")
        wait_ready(page, "label-antelope")
        cards = page.locator(".card")
        keys = [cards.nth(i).get_attribute("data-key") for i in range(5)]
        predicted = [cards.nth(i).locator(".pred b").inner_text() for i in range(5)]
        # decide: accept (keyboard), keep (keyboard), another label by type-ahead, not an
        # animal (keyboard), bad crop (a click)
        page.keyboard.press("a")
        page.keyboard.press("k")
        page.keyboard.press("/")
        page.keyboard.type("bi")
        shot(page, tmp_path, "review-picker.png")
        page.keyboard.press("Enter")
        page.keyboard.press("n")
        cards.nth(4).locator("button[data-kind='bad_crop']").click()
        wait_saved(page)
        assert decided(page).startswith("5 of ")
        assert "relabelled: bird" in cards.nth(2).inner_text()
        shot(page, tmp_path, "review-grid.png")

        made = {
            keys[0]: predicted[0].title() + " sp",
            keys[2]: "Bird sp",
            keys[3]: None,
            keys[4]: None,
        }  # keys[1]: the label is right, so no entry

        def expect(lists: dict[str, dict[str, str | None]], decisions: dict) -> None:
            # one entry per image: the latest decision on any of its crops
            want: dict[str, str | None] = {}
            for key, cls in decisions.items():
                want[key.split("___crop")[0]] = cls if cls is None else cls.lower()
            assert lists == {"md": want}

        mislabeled = synthetic_run / "mislabeled"
        expect(read_mislabeled_dir(mislabeled, ["md"]), made)

        # a reload resumes at the first crop not decided yet, with every decision shown
        page.reload()
        wait_ready(page, "label-antelope")
        assert decided(page).startswith("5 of ")
        assert page.locator(".card.focus").get_attribute("data-key") == cards.nth(5).get_attribute(
            "data-key"
        )
        assert "not an animal" in cards.nth(3).inner_text()

        # the server killed mid-session: a new one (same token) shows the same state
        server.kill()
        server = Server(args)
        page.goto(server.url)
        page.wait_for_selector("body[data-ready]")
        page.select_option("#queue", "label-antelope")
        wait_ready(page, "label-antelope")
        assert decided(page).startswith("5 of ")
        # undo the "not an animal": its image leaves the list again
        page.locator(".card").nth(3).click()
        page.keyboard.press("u")
        wait_saved(page)
        del made[keys[3]]
        expect(read_mislabeled_dir(mislabeled, ["md"]), made)

        # decisions per minute with the keyboard, saves included: accept a page of crops
        page.select_option("#queue", "mislabeled-train")
        queue = "mislabeled-train"
        if page.locator(".card").count() < 8:
            page.select_option("#queue", "label-bird")
            queue = "label-bird"
        wait_ready(page, queue)
        n = min(page.locator(".card").count(), 12)
        start = time.perf_counter()
        for _ in range(n):
            page.keyboard.press("a")
        wait_saved(page)
        seconds = time.perf_counter() - start
        rate = n / seconds * 60
        print(f"\nkeyboard review: {n} decisions saved in {seconds:.2f} s = {rate:.0f} per minute")
        assert rate > 60  # the page never holds a reviewer back

        # low-confidence detections of new photos → a corrected MD JSON
        lowconf = next(
            o.get_attribute("value")
            for o in page.locator("#queue option").all()
            if (o.get_attribute("value") or "").startswith("lowconf-")
        )
        page.select_option("#queue", lowconf)
        wait_ready(page, lowconf)
        det_keys = [page.locator(".card").nth(i).get_attribute("data-key") for i in range(3)]
        assert page.locator("button[data-kind='keep']").count() == 0  # new photos: no label
        page.keyboard.press("a")
        page.keyboard.press("o")
        page.keyboard.type("carn")
        page.keyboard.press("Enter")
        page.keyboard.press("n")
        wait_saved(page)
        shot(page, tmp_path, "review-detections.png")
        _check_corrected_md(classified_md, det_keys)
    finally:
        server.stop()


def _check_corrected_md(source: Path, keys: list[str | None]) -> None:
    from ct_io.md import validate_md_dict
    from ct_io.problems import errors_only

    original = json.loads(source.read_text())
    fixed = json.loads(source.with_name("new_photos.reviewed.json").read_text())
    assert not errors_only(validate_md_dict(fixed))
    cats = fixed["classification_categories"]
    by_file = {im["file"]: im for im in fixed["images"]}
    before = {im["file"]: im for im in original["images"]}
    (f0, k0), (f1, k1), (f2, _k2) = (str(k).rsplit("#", 1) for k in keys)
    top0 = max(before[f0]["detections"][int(k0)]["classifications"], key=lambda c: c[1])
    assert by_file[f0]["detections"][int(k0)]["classifications"] == [[top0[0], 1.0]]
    relabelled = by_file[f1]["detections"][int(k1)]["classifications"]
    assert [cats[relabelled[0][0]], relabelled[0][1]] == ["carnivore", 1.0]
    assert len(by_file[f2]["detections"]) == len(before[f2]["detections"]) - 1


# ---------------------------------------------------------------- hostile requests


def _request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        given = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        if body:
            given["Content-Length"] = str(len(body.encode()))
        for k, v in given.items():
            conn.putheader(k, v)
        conn.endheaders(body.encode() if body else None)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_review_server_refuses_hostile_requests(synthetic_run: Path) -> None:
    outside = synthetic_run.parent / "outside.jpg"
    shutil.copyfile(next((synthetic_run / "crops").iterdir()), outside)
    (synthetic_run / "crops" / "link.jpg").symlink_to(outside)
    server = Server([str(synthetic_run)])
    port, cookie = server.port, {"Cookie": f"ct_review_{server.port}={TOKEN}"}
    try:
        crop = next(p.name for p in (synthetic_run / "crops").iterdir() if p.name != "link.jpg")
        status, data = _request(port, "GET", f"/files/r0/{crop}?size=128", cookie)
        assert status == 200 and data[:2] == b"\xff\xd8"  # the page's own crops are served
        # no token, a wrong token
        for path in ("/", "/api/session", f"/files/r0/{crop}", "/static/review.js"):
            assert _request(port, "GET", path)[0] == 403
            assert _request(port, "GET", path + "?token=wrong")[0] == 403
        # paths out of the crops folder, raw (no client-side normalising)
        for path in (
            "/files/r0/../../outside.jpg",
            "/files/r0/%2e%2e/%2e%2e/outside.jpg",
            "/files/r0/..%2f..%2foutside.jpg",
            f"/files/r0/{outside}",
            f"/files/r0//{outside}",
            "/files/r0/link.jpg",  # a symlink inside that points outside
            "/files/r0/../classification_ds.csv",
            "/files/r9/x.jpg",
        ):
            status, data = _request(port, "GET", path, cookie)
            assert status in (400, 403, 404), path
            assert data[:2] != b"\xff\xd8", path
        # a foreign Host (DNS rebinding)
        assert _request(port, "GET", "/", {**cookie, "Host": "evil.example"})[0] == 400
        # writes: a foreign Origin, or the cookie alone (what a cross-site form would send)
        decide = json.dumps({"queue": "label-antelope", "key": crop, "kind": "not_animal"})
        write = {**cookie, "Content-Type": "application/json", "X-Review-Token": TOKEN}
        status, _ = _request(
            port, "POST", "/api/decide", {**write, "Origin": "http://evil.example"}, decide
        )
        assert status == 403
        status, _ = _request(port, "POST", "/api/decide", {**write, "Origin": "null"}, decide)
        assert status == 403
        no_header = {k: v for k, v in write.items() if k != "X-Review-Token"}
        assert _request(port, "POST", "/api/decide", no_header, decide)[0] == 403
        assert not (synthetic_run / "mislabeled").exists()  # nothing was written
        # the same write from the page's own origin is accepted
        own = {**write, "Origin": f"http://127.0.0.1:{port}"}
        label_crops = pd.read_csv(synthetic_run / "classification_ds.csv")
        key = label_crops[label_crops["label"] == "antelope"]["path"].iloc[0]
        decide = json.dumps({"queue": "label-antelope", "key": key, "kind": "not_animal"})
        status, data = _request(port, "POST", "/api/decide", own, decide)
        assert status == 200, data
        assert read_mislabeled_dir(synthetic_run / "mislabeled", ["md"])["md"] == {
            key.split("___crop")[0]: None
        }
    finally:
        server.stop()
