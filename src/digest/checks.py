"""Pre-send checks on an issue and its rendered email.

Errors stop a send; warnings are worth a look. Each finding says what and where.
`digest check`, the preview and every send command use the same list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lxml import html

from digest.config import Settings
from digest.issuefile import Issue
from digest.render import MARKERS, UNSUBSCRIBE_MARKER, RenderedIssue
from digest.render.markdown import is_safe_link, link_targets
from digest.render.templates import HTML_TEMPLATE, TEXT_TEMPLATE

GMAIL_CLIP_BYTES = 102_000
CLIP_WARNING_BYTES = 90_000
SUBJECT_WARN_CHARS = 78
PREHEADER_WARN_CHARS = 140
PLACEHOLDER_LINKS = frozenset({"", "#", "#!", "http://", "https://", "about:blank"})
DANGEROUS_URL = re.compile(
    r"""(?:^|[\s"'(=])(?:javascript|file|vbscript|data:text/html)\s*:""", re.I
)
UNSUPPORTED_CSS = re.compile(r"display\s*:\s*(?:inline-)?(flex|grid)\b", re.I)
PLACEHOLDER_TEXT = re.compile(r"\b(lorem ipsum|TODO|TKTK|XXX)\b")


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    message: str  # what and where

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def _link_problem(url: str) -> str | None:
    stripped = url.strip()
    if stripped in PLACEHOLDER_LINKS or stripped.startswith("#"):
        return "is a placeholder"
    if re.match(r"\s*(javascript|file|vbscript|data)\s*:", stripped, re.I):
        return "uses a forbidden scheme"
    if not is_safe_link(stripped):
        return "is not an absolute http(s) or mailto link"
    return None


def check_issue(issue: Issue) -> list[Finding]:
    """Findings in the editor's file itself, located by section and expert."""
    findings: list[Finding] = []
    if not issue.subject.strip():
        findings.append(Finding("error", "subject is empty"))
    elif len(issue.subject) > SUBJECT_WARN_CHARS:
        findings.append(
            Finding(
                "warning",
                f"subject is {len(issue.subject)} characters; inboxes cut it near {SUBJECT_WARN_CHARS}",
            )
        )
    if not issue.preheader:
        findings.append(
            Finding("warning", "preheader is missing; inboxes will show the first text they find")
        )
    elif len(issue.preheader) > PREHEADER_WARN_CHARS:
        findings.append(
            Finding(
                "warning",
                f"preheader is {len(issue.preheader)} characters; keep it under about {PREHEADER_WARN_CHARS}",
            )
        )
    for url in link_targets(issue.editor_note or ""):
        if problem := _link_problem(url):
            findings.append(Finding("error", f"link {url!r} in the editor_note {problem}"))
    for s, section in enumerate(issue.sections, 1):
        where = f"section {s} ({section.title!r})"
        for url in link_targets(section.intro or ""):
            if problem := _link_problem(url):
                findings.append(Finding("error", f"link {url!r} in the intro of {where} {problem}"))
        for expert in section.experts:
            at = f"expert {expert.name!r} in {where}"
            if not expert.excerpt.strip():
                findings.append(Finding("error", f"{at} has no excerpt"))
            if not expert.read_more.strip():
                findings.append(Finding("error", f"{at} has no read-more link"))
            elif problem := _link_problem(expert.read_more):
                findings.append(
                    Finding("error", f"read-more link {expert.read_more!r} of {at} {problem}")
                )
            if not (expert.affiliation or "").strip():
                findings.append(
                    Finding("warning", f"{at} has no affiliation; readers like to know who it is")
                )
            if expert.anchor_from_name:
                anchor = expert.read_more.partition("#")[2]
                findings.append(
                    Finding(
                        "warning",
                        f"the read-more anchor #{anchor} of {at} was made from the expert's "
                        "name (the source named none for this comment), so it may not match the "
                        "page: open the link to check it lands on the comment, then delete "
                        "anchor_from_name",
                    )
                )
            for url in link_targets(expert.excerpt):
                if problem := _link_problem(url):
                    findings.append(
                        Finding("error", f"link {url!r} in the excerpt of {at} {problem}")
                    )
            for field in (expert.excerpt, expert.headline or "", expert.affiliation or ""):
                if match := PLACEHOLDER_TEXT.search(field):
                    findings.append(
                        Finding("warning", f"placeholder text {match.group(0)!r} in {at}")
                    )
    return findings


def check_html(rendered: RenderedIssue, personal_html: str, settings: Settings) -> list[Finding]:
    """Findings in the rendered email as a recipient gets it."""
    findings: list[Finding] = []
    size = len(personal_html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        findings.append(
            Finding(
                "error",
                f"HTML is {size:,} bytes; Gmail clips messages over about {GMAIL_CLIP_BYTES:,} bytes, hiding the unsubscribe link",
            )
        )
    elif size > CLIP_WARNING_BYTES:
        findings.append(
            Finding(
                "warning",
                f"HTML is {size:,} bytes, close to Gmail's clipping limit of about {GMAIL_CLIP_BYTES:,}",
            )
        )
    doc: html.HtmlElement = html.document_fromstring(rendered.html)
    if DANGEROUS_URL.search(rendered.html):
        findings.append(Finding("error", "a javascript:, file: or data: URL appears in the HTML"))
    ids = {el.get("id") for el in doc.iter() if el.get("id")}
    for el in doc.iter("a", "area"):
        href = el.get("href")
        if href is None or href.startswith(MARKERS):
            continue  # a personal link (the unsubscribe page, or it opened at its choices)
        if len(href) > 1 and href.startswith("#") and href[1:] in ids:
            continue  # a link within the email (the contents list)
        if problem := _link_problem(href):
            label = " ".join(el.text_content().split())[:40]
            findings.append(
                Finding("error", f"link {href!r} (text {label!r}) in the HTML {problem}")
            )
    for img in doc.iter("img"):
        if img.get("alt") is None:
            findings.append(
                Finding(
                    "error", f'image {img.get("src")!r} has no alt text (use alt="" if decorative)'
                )
            )
    if not any(el.get("href") == UNSUBSCRIBE_MARKER for el in doc.iter("a")):
        findings.append(
            Finding(
                "error",
                "the HTML has no unsubscribe link (the template must link to unsubscribe_url)",
            )
        )
    if UNSUBSCRIBE_MARKER not in rendered.text:
        findings.append(Finding("error", "the text part has no unsubscribe link"))
    address = settings.newsletter.postal_address.strip()
    text = " ".join(doc.text_content().split())
    if not address:
        findings.append(
            Finding("error", "no postal address: set newsletter.postal_address in config.yaml")
        )
    elif " ".join(address.split()) not in text:
        findings.append(
            Finding("error", "the postal address (newsletter.postal_address) is not in the HTML")
        )
    for link in doc.iter("link"):
        if "stylesheet" in (link.get("rel") or "").lower():
            findings.append(
                Finding(
                    "warning",
                    f"external stylesheet {link.get('href')!r}: most clients ignore it; put CSS in <mj-style>",
                )
            )
    if not doc.get("lang"):
        findings.append(Finding("warning", "the <html> element has no lang attribute"))
    return findings


def check_template_css(settings: Settings) -> list[Finding]:
    """CSS that major clients ignore, in a newsletter's own templates."""
    if settings.render.templates is None:
        return []
    findings: list[Finding] = []
    folder = Path(settings.render.templates)
    for name in (HTML_TEMPLATE, TEXT_TEMPLATE):
        path = folder / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if match := UNSUPPORTED_CSS.search(line):
                findings.append(
                    Finding(
                        "warning",
                        f"{path}:{number}: display:{match.group(1)} is ignored by Outlook for Windows; use tables or MJML columns",
                    )
                )
    return findings


def check_brand(settings: Settings) -> list[Finding]:
    """Colours a reader could not read: the buttons' white text on the accent."""
    from digest.brand import contrast

    accent = settings.brand.accent_color
    ratio = contrast("#ffffff", accent)
    if ratio >= 4.5:
        return []
    return [
        Finding(
            "warning",
            f"brand.accent_color {accent}: the buttons' white text on it has a contrast of "
            f"{ratio:.1f}:1, under the 4.5:1 readers need; choose a darker colour",
        )
    ]


def check_all(
    issue: Issue, rendered: RenderedIssue, personal_html: str, settings: Settings
) -> list[Finding]:
    """Every finding, errors first."""
    found = (
        check_issue(issue)
        + check_html(rendered, personal_html, settings)
        + check_template_css(settings)
        + check_brand(settings)
    )
    return sorted(found, key=lambda f: f.level != "error")


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)
