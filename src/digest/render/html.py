"""MJML -> HTML (mjml-python) -> HTML with inlined CSS (premailer), offline and once."""

from __future__ import annotations

import logging

import mjml
from premailer import Premailer

from digest.errors import RenderError

DOCTYPE = "<!doctype html>"


def compile_mjml(source: str, fonts: dict[str, str]) -> str:
    """MJML -> HTML. ``fonts`` maps font names to CSS URLs; empty means no web fonts."""
    try:
        return str(mjml.mjml2html(source, disable_comments=True, fonts=fonts))
    except Exception as err:  # mjml-python raises plain exceptions with MRML's message
        raise RenderError(f"MJML error: {err}") from None


def inline_css(html: str) -> str:
    """Inline the CSS for clients that drop <style>, keeping what MJML's layout needs:
    !important, the @media rules and the style blocks. Nothing is fetched."""
    premailer = Premailer(
        html,
        strip_important=False,
        keep_style_tags=True,
        allow_network=False,
        allow_loading_external_files=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        exclude_pseudoclasses=True,
        # MJML writes the width and height attributes Outlook sizes by; premailer would
        # overwrite them from the CSS (an image's "width:100%" as width="100%")
        disable_basic_attributes=["width", "height"],
    )
    try:
        out = str(premailer.transform(pretty_print=False))
    except Exception as err:  # premailer surfaces lxml/cssutils errors as-is
        raise RenderError(f"CSS inlining failed: {err}") from None
    if not out.lstrip().lower().startswith("<!doctype"):
        out = f"{DOCTYPE}\n{out}"
    return out
