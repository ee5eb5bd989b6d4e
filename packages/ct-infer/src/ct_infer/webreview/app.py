"""The review page's web app (Starlette): one HTML page, its script, a JSON API, crops.

Safe on a shared machine the way Jupyter is:

- it listens on loopback (127.0.0.1) unless told otherwise, and answers only requests
  whose ``Host`` is the address it serves (no DNS rebinding);
- every request needs the random token of the URL ``ct-infer review`` prints (in the
  query once, then an HttpOnly SameSite=Strict cookie);
- a write (POST) must also carry the token in an ``X-Review-Token`` header and, when the
  browser names an ``Origin``, come from the page's own origin, so another site open in
  the same browser can neither read nor write;
- pictures are served only from the session's folders (``ct_io.paths.safe_join``: no
  ``..``, no absolute paths, no symlinks out), only image files, only as JPEG thumbnails.
"""

from __future__ import annotations

import functools
import hmac
import importlib.resources
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ct_infer.thumbs import thumbnail_bytes
from ct_infer.webreview.session import ReviewSession
from ct_io.errors import CamtrapError
from ct_io.paths import safe_join

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
TOKEN_HEADER = "x-review-token"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self'; script-src 'self'; "
    "style-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
THUMB_SIZES = (128, 256, 512)


def _static(name: str) -> bytes:
    return (importlib.resources.files("ct_infer.webreview") / "static" / name).read_bytes()


class Guard:
    """ASGI middleware: Host, token and same-origin checks before any route runs."""

    def __init__(self, app: ASGIApp, token: str, hosts: set[str] | None, cookie: str) -> None:
        self.app, self.token, self.hosts, self.cookie = app, token, hosts, cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "")
        if self.hosts is not None and host not in self.hosts:
            await _refuse(400, f"unexpected Host {host!r}: open the URL ct-infer review printed")(
                scope, receive, send
            )
            return
        given = (
            request.query_params.get("token")
            or request.headers.get(TOKEN_HEADER)
            or request.cookies.get(self.cookie)
            or ""
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await _refuse(
                403, "this page needs the token in the URL that `ct-infer review` printed"
            )(scope, receive, send)
            return
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin.removeprefix("http://") != host:
                await _refuse(403, f"cross-site write from {origin} refused")(scope, receive, send)
                return
            header = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(header.encode(), self.token.encode()):
                await _refuse(403, f"a write needs the {TOKEN_HEADER} header")(scope, receive, send)
                return
        if request.query_params.get("token") and request.url.path == "/":
            # the token moves from the URL (and the browser's history) into a cookie
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _refuse(status: int, text: str) -> Response:
    return PlainTextResponse(text + "\n", status_code=status, headers=SECURITY_HEADERS)


def create_app(session: ReviewSession, token: str, hosts: set[str] | None, port: int) -> ASGIApp:
    """The app for ``session``; ``hosts``: the ``host:port`` values requests may name
    (None: any, when serving beyond loopback)."""

    @functools.lru_cache(maxsize=1024)
    def thumb(root: str, path: str, size: int, bbox: tuple[float, ...] | None) -> bytes:
        source = safe_join(session.roots[root], path)
        return thumbnail_bytes(source, size, bbox, quality=85)

    async def page(request: Request) -> Response:
        text = _static("review.html").replace(b"{{TOKEN}}", token.encode())
        return Response(text, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _refuse(404, "not found")
        return Response(_static(name), media_type=STATIC[name])

    async def api_session(request: Request) -> Response:
        return JSONResponse(session.summary())

    async def api_queue(request: Request) -> Response:
        try:
            return JSONResponse(session.queue_json(request.path_params["queue"]))
        except CamtrapError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    async def api_decide(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send JSON"}, status_code=415)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            result = await run_in_threadpool(
                session.decide,
                str(body["queue"]),
                str(body["key"]),
                str(body["kind"]),
                None if body.get("label") is None else str(body["label"]),
            )
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        except CamtrapError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    async def files(request: Request) -> Response:
        root, path = request.path_params["root"], request.path_params["path"]
        if root not in session.roots:
            return _refuse(404, "no such folder")
        if "." + path.rsplit(".", 1)[-1].lower() not in IMAGE_SUFFIXES:
            return _refuse(404, "only images are served")
        try:
            size = int(request.query_params.get("size", "256"))
            bbox = request.query_params.get("bbox")
            box = tuple(float(v) for v in bbox.split(",")) if bbox else None
            if size not in THUMB_SIZES or (box is not None and len(box) != 4):
                raise ValueError(size)
            data = await run_in_threadpool(thumb, root, path, size, box)
        except ValueError:
            return _refuse(400, f"size must be one of {THUMB_SIZES}; bbox x,y,w,h")
        except CamtrapError as exc:  # safe_join refused the path
            return _refuse(403, str(exc))
        except Exception as exc:  # a missing or unreadable picture
            log.debug("no picture for %s/%s: %s", root, path, exc)
            return _refuse(404, "picture not found or unreadable")
        return Response(data, media_type="image/jpeg")

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/favicon.ico", favicon),
            Route("/static/{name}", static),
            Route("/api/session", api_session),
            Route("/api/queue/{queue:path}", api_queue),
            Route("/api/decide", api_decide, methods=["POST"]),
            Route("/files/{root}/{path:path}", files),
        ]
    )
    return Guard(app, token, hosts, cookie=f"ct_review_{port}")
