"""The issues: the list, one issue's editor beside its preview, and saving.

``GET  /``                       every issue file and every scheduled or sent issue
``GET  /issues/<name>``          the editor: its words, its checks, its preview
``POST /issues/<name>``          save (refused when the file changed since it was opened)
``GET  /issues/<name>/preview``  the email exactly as a subscriber gets it
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.build import notes_without_fields
from digest.desk.app import HEADERS, DeskState, locked_out, page, requires, see_other
from digest.desk.editing import StaleSave, apply_edits, issue_path, version_of
from digest.desk.sessions import Signed
from digest.errors import DigestError, IssueFileError
from digest.store.records import ScheduledIssue

SUBJECT_LINE = re.compile(r"^subject:[ \t]*(.*)$", re.M)
DARK_MEDIA = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")
FIELD_PATH = re.compile(r"sections\[(\d+)\](?:\.experts\[(\d+)\])?\.(\w+)")


@dataclass(frozen=True)
class Listed:
    name: str
    subject: str
    status: str
    send_at: Any  # datetime or None
    changed_by: str


def _subject(path: Path, cache: dict[Path, tuple[int, str]]) -> str:
    """The subject line, read from the file's text (kept until the file changes)."""
    stat = path.stat()
    kept = cache.get(path)
    if kept and kept[0] == stat.st_mtime_ns:
        return kept[1]
    text = path.read_text(encoding="utf-8", errors="replace")
    found = SUBJECT_LINE.search(text)
    subject = found.group(1).strip().strip("'\"") if found else path.stem
    cache[path] = (stat.st_mtime_ns, subject)
    return subject


def field_of(message: str) -> str:
    """The form field an issue-file error names (``s0.e1.excerpt``), or ``""``."""
    found = FIELD_PATH.search(message)
    if found:
        section, expert, key = found.groups()
        return f"s{section}.e{expert}.{key}" if expert else f"s{section}.{key}"
    for key in ("subject", "preheader", "editor_note"):
        if re.search(rf"\b{key}\b", message):
            return key
    return ""


EXPERT_AT = re.compile(r"expert '(?P<name>.+?)' in section (?P<section>\d+) ")
SECTION_AT = re.compile(r"(?P<part>intro|title) of section (?P<section>\d+) ")


def finding_field(message: str, issue: Any) -> str:
    """The editor field a check's finding is about (``s0.e1.excerpt``), or ``""``."""
    if found := EXPERT_AT.search(message.replace('"', "'")):
        s = int(found["section"]) - 1
        experts = issue.sections[s].experts if 0 <= s < len(issue.sections) else ()
        e = next((i for i, x in enumerate(experts) if x.name == found["name"]), None)
        if e is None:
            return ""
        key = "affiliation" if "affiliation" in message else "excerpt"
        return f"s{s}.e{e}.{key}"
    if found := SECTION_AT.search(message):
        return f"s{int(found['section']) - 1}.{found['part']}"
    for key in ("subject", "preheader", "editor_note"):
        if message.startswith(key) or f"the {key}" in message:
            return key
    return ""


def zone_of(state: DeskState, signed: Signed) -> str:
    """The time zone to show ``signed`` times in: theirs (the last they scheduled in),
    else delivery.timezone."""
    return signed.user.zone or state.settings.delivery.timezone


def editor_view(state: DeskState, name: str) -> dict[str, Any]:
    """What the editor page shows of issue ``name``: its words, checks and schedule."""
    path = issue_path(state.issues, name)
    data = path.read_bytes()
    result = state.build(path)
    from digest.desk.picker import choices

    scheduled: ScheduledIssue | None = state.store.get_schedule(path.stem)
    return {
        "choices": choices(path, result.issue),
        "budget": state.settings.compose.excerpt.words,
        "asked": state.store.approval_request(path.stem),
        "require_approval": state.settings.desk.require_approval,
        "name": path.stem,
        "issue": result.issue,
        "version": version_of(data),
        "findings": result.findings,
        "noted": {
            key: [f for f in result.findings if finding_field(f.message, result.issue) == key]
            for key in {finding_field(f.message, result.issue) for f in result.findings} - {""}
        },
        "scheduled": scheduled,
        # where the templates use subscriber fields: a view as a reader without any
        "field_notes": notes_without_fields(result.rendered) if result.without_fields else [],
        "uses_fields": result.without_fields is not None,
    }


async def editor_page(
    state: DeskState, name: str, signed: Signed, status: int = 200, **extra: Any
) -> Response:
    """The editor for issue ``name``, with ``extra`` (a notice, a problem, the values
    the editor typed, a test send's outcomes)."""
    try:
        view = await state.call(editor_view, state, name)
    except IssueFileError as err:
        return page(state, "message", 404, signed, kind="no_issue", detail=str(err))
    except DigestError as err:  # an issue file broken on disk: say so, edit by hand
        return page(state, "message", 422, signed, kind="broken", detail=str(err))
    extra.setdefault("values", {})
    return page(
        state, "editor", status, signed, **view, zone=zone_of(state, signed),
        staff=list(state.settings.staff), **extra,
    )  # fmt: skip


def conflict_page(state: DeskState, signed: Signed, name: str, stale: StaleSave) -> Response:
    """A save refused because the file changed since it was opened: both versions."""
    return page(
        state, "conflict", 409, signed, name=name, mine=stale.mine, theirs=stale.theirs,
        message=str(stale),
    )  # fmt: skip


def routes(state: DeskState) -> list[Route]:
    settings = state.settings
    subjects: dict[Path, tuple[int, str]] = {}

    def listing() -> list[Listed]:
        schedules = {s.slug: s for s in state.store.list_schedules()}
        asked = {a.slug: a for a in state.store.approval_requests()}
        changed: dict[str, str] = {}
        for entry in state.store.audit_entries(limit=5000):
            if entry.action in ("edited", "scheduled", "unscheduled"):
                changed.setdefault(entry.subject, entry.actor)
        names = {p.stem: p for p in state.issues.glob("*.yaml") if p.is_file()}
        out = []
        for name in sorted(set(names) | set(schedules), reverse=True):
            scheduled = schedules.get(name)
            subject = _subject(names[name], subjects) if name in names else name
            waiting = asked.get(name)
            status = scheduled.status if scheduled else "draft"
            if waiting and status in ("draft", "cancelled"):
                status = "awaiting approval"
            out.append(
                Listed(
                    name,
                    subject,
                    status,
                    scheduled.send_at if scheduled else (waiting.send_at if waiting else None),
                    changed.get(name, ""),
                )
            )
        return out

    @requires(state, "contributor")
    async def index(request: Request, signed: Signed) -> Response:
        issues = await state.call(listing)
        return page(state, "issues", signed=signed, issues=issues, zone=zone_of(state, signed))

    @requires(state, "contributor")
    async def show(request: Request, signed: Signed) -> Response:
        notice = {
            "saved": "Saved.",
            "unchanged": "Nothing had changed.",
            "composed": "Composed. Check each excerpt against its comment before sending.",
        }.get(request.query_params.get("done", ""), "")
        return await editor_page(state, request.path_params["name"], signed, notice=notice)

    @requires(state, "contributor")
    async def save(request: Request, signed: Signed) -> Response:
        form: dict[str, str] = request.state.form
        name = request.path_params["name"]
        path = issue_path(state.issues, name)  # no such issue: the app's 404 page
        if refusal := await locked_out(state, path.stem, signed):
            return refusal
        try:
            saved = await state.call(apply_edits, path, form.get("base", ""), form, settings.limits)
        except StaleSave as stale:
            return conflict_page(state, signed, path.stem, stale)
        except IssueFileError as err:
            message = str(err)
            return await editor_page(
                state, name, signed, 400, problem=message, problem_field=field_of(message),
                values=form,
            )  # fmt: skip
        if saved.changed:
            await state.call(
                state.store.audit, signed.user.email, "edited", path.stem, fields=saved.changed
            )
        return see_other(
            state, f"/issues/{path.stem}?done={'saved' if saved.changed else 'unchanged'}"
        )

    @requires(state, "contributor")
    async def preview(request: Request, signed: Signed) -> Response:
        try:
            path = issue_path(state.issues, request.path_params["name"])
            result = await state.call(state.build, path)
        except DigestError as err:
            return page(state, "message", 404, signed, kind="no_issue", detail=str(err))
        # the email's own HTML: no scripts, its images from https only
        framed = HEADERS | {
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
            " img-src https: data:; frame-ancestors 'self'; sandbox"
        }
        part = request.query_params.get("part")
        if part == "bare" and result.without_fields is not None:
            # as a subscriber without any field gets it: each fallback in its place
            return HTMLResponse(result.without_fields.html, headers=framed)
        if part == "text":
            return PlainTextResponse(result.sample.text, headers=framed)
        if part == "headers":  # the sample message's, as a subscriber's mail carries them
            head = result.eml.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            return PlainTextResponse(head.decode("utf-8", "replace"), headers=framed)
        if part == "dark":  # as a dark-mode inbox shows it: the email's own dark rules on
            html = DARK_MEDIA.sub("@media all", result.sample.html)
            return HTMLResponse(html, headers=framed)
        return HTMLResponse(result.sample.html, headers=framed)

    return [
        Route("/", index, methods=["GET"]),
        Route("/issues/{name:str}", show, methods=["GET"]),
        Route("/issues/{name:str}", save, methods=["POST"]),
        Route("/issues/{name:str}/preview", preview, methods=["GET"]),
    ]
