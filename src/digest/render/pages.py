"""The public pages (home, archive, signup, confirm, unsubscribe and their notices) as
Jinja2 templates under ``templates/pages/``, in the email's look.

A site overrides any one of them by putting a file of the same name in the
``pages/`` folder of its own ``render.templates``; every other page still comes from
the bundled templates (so a site that only restyles ``pages/base.html.j2`` gets its
look on every page). Pages are autoescaped.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from markupsafe import Markup

from digest.config import Settings
from digest.errors import ConfigError
from digest.render.markdown import inline_html
from digest.render.templates import bundled_templates, longdate, no_widow, render_template

BASE = "pages/base.html.j2"
_CSS_SAFE = frozenset(" ,'\"-_.#%()") | frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def css_value(text: str) -> Markup:
    """A value for a <style> block (a font stack, a colour), as it is: HTML escaping
    does not apply inside <style>, so anything but letters, digits, spaces, quotes and
    ``,-_.#%()`` is left out (no ``;``, ``}`` or ``<`` to end the rule or the block)."""
    return Markup("".join(c for c in str(text) if c.lower() in _CSS_SAFE))


@functools.lru_cache(maxsize=8)
def _environment(own: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if own is not None:
        loaders.append(jinja2.FileSystemLoader(own))
    loaders.append(jinja2.FileSystemLoader(str(bundled_templates())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["longdate"] = longdate
    env.filters["no_widow"] = no_widow
    env.filters["css"] = css_value
    env.filters["localtime"] = localtime
    env.filters["markdown"] = lambda text: Markup(inline_html(text or ""))
    return env


def localtime(moment: object, zone_name: str) -> str:
    """A UTC time as the clock reads in ``zone_name``: 2026-12-01 08:00 CET."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    if not isinstance(moment, dt.datetime):
        return ""
    local = moment.astimezone(ZoneInfo(zone_name))
    return f"{local:%Y-%m-%d %H:%M} {local:%Z}"


def page_environment(configured: str | None) -> jinja2.Environment:
    if configured is None:
        return _environment(None)
    folder = Path(configured)
    if not folder.is_dir():
        raise ConfigError(f"render.templates: {folder} is not a folder")
    return _environment(str(folder.resolve()))


def look(settings: Settings) -> dict[str, object]:
    """What every page template gets: the newsletter, its brand and the public links."""
    web = settings.web
    return {
        "newsletter": settings.newsletter,
        "brand": settings.brand,
        "font_family": settings.render.font_family,
        "fonts": list(settings.render.fonts.values()),
        # what the signup form offers where several newsletters are declared
        "signup_choices": [
            {
                "key": key,
                "name": (n := settings.newsletter_for(key)).name,
                "description": n.description,
                "checked": key == settings.newsletter.key,
            }
            for key in settings.newsletter_keys
        ]
        if settings.newsletters
        else [],
        "links": {
            "home": web.url("/"),
            "issues": web.url("/issues/"),
            "subscribe": web.url("/subscribe"),
            "feed": web.url("/feed.xml"),
        },
    }


def render_page(settings: Settings, name: str, **context: object) -> str:
    """``pages/<name>.html.j2`` with the common context and ``context``."""
    return render_named(settings, f"pages/{name}.html.j2", **context)


def render_named(settings: Settings, template: str, **context: object) -> str:
    """Any page template (the desk's too: ``desk/<name>.html.j2``), in the shared look."""
    env = page_environment(settings.render.templates)
    values = look(settings) | {"robots": "", "canonical": "", "status_title": ""} | context
    return render_template(env, template, values)


def page_images(settings: Settings) -> str:
    """The CSP ``img-src`` the pages need: the logo's origin, or none."""
    logo = settings.brand.logo
    return logo.origin if logo else "'none'"
