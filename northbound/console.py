"""The web console: a single-page app of static files (``northbound/static/``) served at
``/console/``, with ``/`` redirecting there.

The files hold no data: the page logs in with ``POST /api/auth/login`` (the session
cookie) and reads everything from the REST API, so these routes are public in the role
matrix while every API call the page makes is checked like any other. No build step and
no Node.js at run time: plain HTML, CSS and JavaScript. Every answer carries a Content
Security Policy that allows scripts and styles from this origin only, so even a value
that slipped into the page as markup could not run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

__all__ = ["CONSOLE_PATH", "STATIC_DIR", "mount_console"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONSOLE_PATH = "/console/"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-cache"}
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
               ".png": "image/png", ".md": "text/markdown; charset=utf-8",
               ".json": "application/json"}


def _file(relative: str) -> Path | None:
    """The static file at ``relative`` (inside STATIC_DIR only), or ``None``."""
    root = STATIC_DIR.resolve()
    try:
        target = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def _serve(request: Request, relative: str) -> Response:
    target = _file(relative or "index.html")
    if target is None:
        return JSONResponse({"type": "about:blank", "title": "Not found", "status": 404,
                             "detail": f"no console file {relative!r}",
                             "instance": request.url.path},
                            status_code=404, media_type="application/problem+json")
    return FileResponse(target, headers=HEADERS,
                        media_type=MEDIA_TYPES.get(target.suffix, "application/octet-stream"))


def mount_console(app: FastAPI) -> FastAPI:
    """Serve the console at ``/console/`` and redirect ``/`` (and ``/console``) there.
    The routes stay out of the OpenAPI document: they are pages, not API."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH, status_code=307)

    @app.get("/console", include_in_schema=False)
    def console_bare() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH, status_code=307)

    @app.get("/console/{path:path}", include_in_schema=False)
    def console_file(request: Request, path: str) -> Response:
        return _serve(request, path)

    return app
