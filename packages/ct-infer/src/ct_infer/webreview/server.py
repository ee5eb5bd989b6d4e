"""Serve a review session with uvicorn on a socket bound before the URL is printed."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Callable

from ct_io.errors import CamtrapError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def new_token() -> str:
    """A random URL-safe token (as Jupyter's), 32 bytes of entropy."""
    return secrets.token_urlsafe(32)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CamtrapError(
            f"cannot listen on {host}:{port} ({exc.strerror}) — pick another --port (0: any free one)"
        ) from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """``Host`` header values the page answers; None (any) when bound beyond loopback."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    shown = f"[{host}]" if ":" in host else host
    return {f"{name}:{port}" for name in (*LOOPBACK_NAMES, shown)}


def serve(
    app_for: Callable[[int], object], host: str, port: int, announce: Callable[[str], None]
) -> None:
    """Bind, tell ``announce`` the address, and serve until interrupted."""
    import uvicorn

    sock = bind(host, port)
    actual = sock.getsockname()[1]
    app = app_for(actual)
    shown = f"[{host}]" if ":" in host else host
    announce(f"http://{shown}:{actual}")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
