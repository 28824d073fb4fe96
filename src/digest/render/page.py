"""The public pages' one look: a small, self-contained HTML document (no scripts, no
external assets), used by the web app and by the static archive alike."""

from __future__ import annotations

import html

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1d1c1a;background:#fbf9f4}a{color:#7a2e12}"
    "button{font-size:1.05rem;padding:.8rem 1.4rem;min-height:44px;border-radius:6px;border:0;"
    "background:#7a2e12;color:#fff;cursor:pointer}"
    "label{display:block;margin:.8rem 0 .2rem;font-weight:600}"
    "input[type=email],input[type=text]{font-size:1rem;padding:.6rem;width:100%;"
    "box-sizing:border-box;border:1px solid #8a8276;border-radius:4px;min-height:44px}"
    ".dg-trap{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
    "ol.dg-issues{padding-left:1.2rem}ol.dg-issues li{margin:.6rem 0}"
    ".dg-small{color:#5c564d;font-size:.95rem}"
    "@media (prefers-color-scheme:dark){body{background:#14130f;color:#ece6da}"
    "a{color:#f2a57c}.dg-small{color:#b9b1a3}}"
)


def document(
    title: str, body_html: str, *, language: str = "en", head_html: str = "", robots: str = ""
) -> str:
    """A page titled ``title`` (escaped here) around ``body_html`` and ``head_html``
    (already safe HTML)."""
    robots_meta = f'<meta name="robots" content="{html.escape(robots)}">' if robots else ""
    return (
        f'<!doctype html>\n<html lang="{html.escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{robots_meta}<title>{html.escape(title)}</title>{head_html}"
        f"<style>{STYLE}</style></head><body><main><h1>{html.escape(title)}</h1>{body_html}"
        "</main></body></html>\n"
    )
