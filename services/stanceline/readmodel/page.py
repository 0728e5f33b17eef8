"""The built-in dashboard: one HTML page at ``/`` and its static files under ``/static``.

The page is plain JavaScript over the public JSON API and the live feed; it holds no
rule of its own. Everything it shows is untrusted text (quotes, names, titles), so it
writes text through DOM APIs only, and the Content-Security-Policy below refuses inline
script and any script not served from here, in case that ever slips.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

# No inline script or style, nothing from another origin; the page is never framed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@cache
def _page() -> bytes:
    return (STATIC / "index.html").read_bytes()


@router.get("/")
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page(), headers=PAGE_HEADERS)


def mount(app: FastAPI) -> None:
    """The page at ``/``, its scripts and styles at ``/static`` (kept out of the schema)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
