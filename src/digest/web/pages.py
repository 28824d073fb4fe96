"""The public pages' one look: a small, self-contained HTML page with safe headers."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1d1c1a}button{font-size:1.05rem;padding:.8rem 1.4rem;min-height:44px;"
    "border-radius:6px;border:0;background:#7a2e12;color:#fff;cursor:pointer}"
)


def page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    """A page titled ``title`` (escaped here) around ``body_html`` (already safe HTML)."""
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body_html}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)
