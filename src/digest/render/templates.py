"""The Jinja2 environment for the newsletter's templates.

Templates come from config.yaml's ``render.templates`` folder when set, else the bundled
``templates/``. ``*.mjml.j2`` templates are autoescaped; the text template is not.
"""

from __future__ import annotations

import datetime as dt
import functools
import textwrap
from pathlib import Path

import jinja2
from markupsafe import Markup

from digest.errors import ConfigError, RenderError
from digest.render.markdown import curly, inline_html, inline_text, is_safe_link
from digest.render.personal import (
    HARMLESS_FILTERS,
    FieldUseError,
    fallback_filter,
    refusing_fields,
)

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
TEXT_WIDTH = 78


def bundled_templates() -> Path:
    """The templates shipped with digest: inside the package when installed from a
    wheel, else the project's top-level ``templates/`` folder."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent.parent / "templates"):
        if (candidate / HTML_TEMPLATE).is_file():
            return candidate
    raise ConfigError("the bundled templates are missing; reinstall digest")


def template_folder(configured: str | None, setting: str = "render.templates") -> Path:
    """The folder of email templates ``setting`` names (the bundled one for None)."""
    if configured is None:
        return bundled_templates()
    folder = Path(configured)
    if not folder.is_dir():
        raise ConfigError(f"{setting}: {folder} is not a folder")
    for name in (HTML_TEMPLATE, TEXT_TEMPLATE):
        if not (folder / name).is_file():
            raise ConfigError(f"{setting}: {folder} has no {name}")
    return folder


def longdate(value: dt.date | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else ""


NOWRAP = '<span style="white-space:nowrap">{}</span>'


def nowrap(text: str) -> Markup:
    """Text that never breaks across lines (a date, say)."""
    return Markup(NOWRAP).format(text)


def with_last_word(text: str, tail: str) -> Markup:
    """``text`` with ``tail`` (e.g. an arrow) kept on one line with its last word."""
    head, _, last = str(text).rpartition(" ")
    # the tail is decoration: hidden from screen readers, which would read it out
    kept = Markup(NOWRAP).format(
        Markup('{}&nbsp;<span aria-hidden="true">{}</span>').format(last, tail)
    )
    return Markup("{} {}").format(head, kept) if head else kept


def no_widow(text: str) -> Markup:
    """``text`` whose last two words stay on one line (a title never ends with a word
    alone on its last line)."""
    head, _, last = str(text).rpartition(" ")
    if not head.strip():
        return Markup("{}").format(text)
    return Markup("{}&nbsp;{}").format(head, last)


def word_count(text: str) -> int:
    return len(str(text or "").split())


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap each line of ``text`` at ``width``; never break a URL or a long word."""
    lines = []
    for line in str(text).splitlines() or [""]:
        wrapped = textwrap.wrap(
            line, width, break_long_words=False, break_on_hyphens=False
        )  # fmt: skip
        lines.extend(wrapped or [""])
    return "\n".join(lines)


@functools.lru_cache(maxsize=8)
def _cached_environment(folder: Path) -> jinja2.Environment:
    return make_environment(folder)


def environment_for(
    configured: str | None, setting: str = "render.templates"
) -> jinja2.Environment:
    """The Jinja2 environment for the configured template folder, made once per folder:
    its compiled templates are kept, and reloaded when a template file changes."""
    return _cached_environment(template_folder(configured, setting).resolve())


def make_environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=lambda name: bool(name and name.endswith(".mjml.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["markdown"] = lambda text: Markup(inline_html(text or ""))
    env.filters["url"] = lambda url: url if url and is_safe_link(url) else ""
    env.filters["plaintext"] = lambda text: inline_text(text or "")
    env.filters["longdate"] = longdate
    env.filters["wrap"] = wrap
    env.filters["nowrap"] = nowrap
    env.filters["with_last_word"] = with_last_word
    env.filters["no_widow"] = no_widow
    env.filters["curly"] = curly
    env.filters["word_count"] = word_count
    # a subscriber field (filled per reader later): | default sets its fallback, a filter
    # that would change it is refused rather than silently not applied
    for name, original in list(env.filters.items()):
        if name in ("default", "d"):
            env.filters[name] = fallback_filter(original)
        elif name not in HARMLESS_FILTERS:
            env.filters[name] = refusing_fields(name, original)
    return env


def render_template(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    """Render one template; template mistakes become RenderError naming file and line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as err:
        where = f"{err.filename or name}:{err.lineno}"
        raise RenderError(f"{where}: template syntax error: {err.message}") from None
    except jinja2.UndefinedError as err:
        raise RenderError(f"{template_path(env, name)}: {err.message}") from None
    except jinja2.TemplateNotFound as err:
        raise RenderError(f"template not found: {err.name}") from None
    except FieldUseError as err:  # subscriber.<field> used in a way that cannot work
        raise RenderError(f"{template_path(env, name)}{_failing_line(err, name)}: {err}") from None
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as err:
        # a template of one's own that fails as it runs ({{ 1 / 0 }}, a bad filter call)
        line = _failing_line(err, name)
        raise RenderError(
            f"{template_path(env, name)}{line}: the template failed ({type(err).__name__}: {err})"
        ) from None


def _failing_line(err: BaseException, name: str) -> str:
    """ ":LINE" of the template where ``err`` was raised, when the traceback shows it."""
    trace = err.__traceback__
    line = ""
    while trace is not None:
        if trace.tb_frame.f_code.co_filename.endswith(name):
            line = f":{trace.tb_lineno}"
        trace = trace.tb_next
    return line


def template_path(env: jinja2.Environment, name: str) -> str:
    loader = env.loader
    if isinstance(loader, jinja2.FileSystemLoader):
        return str(Path(loader.searchpath[0]) / name)
    return name
