"""Choosing an excerpt from the expert's own sentences.

The desk shows each expert's whole comment (kept by composing, see
:mod:`digest.comments`), sentence by sentence; the editor picks the first and last, and
the excerpt becomes exactly those sentences: never a sentence cut in the middle.

``POST /issues/<name>/excerpt``  s, e (which expert), from, to (sentence numbers), base
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.comments import read_comments
from digest.desk.app import DeskState, locked_out, requires, see_other
from digest.desk.editing import StaleSave, apply_edits, issue_path
from digest.desk.issue_routes import conflict_page, editor_page
from digest.desk.sessions import Signed
from digest.errors import DigestError, IssueFileError
from digest.issuefile import Issue


@dataclass(frozen=True)
class Sentence:
    number: int  # from 1, across the whole comment
    text: str  # inline Markdown
    words: int
    starts_paragraph: bool


@dataclass(frozen=True)
class Choice:
    sentences: list[Sentence]
    first: int  # the sentences the excerpt is now, when it is made of them; else 1..1
    last: int


def _sentences(paragraphs: list[list[str]]) -> list[Sentence]:
    out: list[Sentence] = []
    for paragraph in paragraphs:
        for index, text in enumerate(paragraph):
            out.append(Sentence(len(out) + 1, text, len(text.split()), index == 0))
    return out


def choices(path: Path, issue: Issue) -> dict[str, Choice]:
    """For each expert whose comment is kept, by form key prefix (``s0.e1``)."""
    kept = read_comments(path)
    out = {}
    for s, section in enumerate(issue.sections):
        for e, expert in enumerate(section.experts):
            comment = kept.get(expert.read_more)
            if not isinstance(comment, dict) or not comment.get("paragraphs"):
                continue
            found = _sentences(comment["paragraphs"])
            texts = [x.text for x in found]
            first = next((i for i, t in enumerate(texts) if expert.excerpt.startswith(t)), 0)
            last = next(
                (
                    i
                    for i in range(len(texts) - 1, first - 1, -1)
                    if expert.excerpt.endswith(texts[i])
                ),
                first,
            )
            out[f"s{s}.e{e}"] = Choice(found, first + 1, last + 1)
    return out


def chosen_text(path: Path, issue: Issue, s: int, e: int, first: int, last: int) -> str:
    expert = issue.sections[s].experts[e]
    comment = read_comments(path).get(expert.read_more)
    if not isinstance(comment, dict):
        raise IssueFileError("this expert's whole comment is not kept: type the excerpt")
    found = _sentences(comment.get("paragraphs") or [])
    if not (1 <= first <= last <= len(found)):
        raise IssueFileError(
            f"choose sentences between 1 and {len(found)}, the first before the last"
        )
    return " ".join(x.text for x in found[first - 1 : last])


def _number(form: dict[str, str], key: str) -> int:
    value = form.get(key, "")
    if not value.isdigit():
        raise IssueFileError(f"{key}: not a number")
    return int(value)


def routes(state: DeskState) -> list[Route]:
    settings = state.settings

    def pick(path: Path, form: dict[str, str]) -> tuple[str, list[str]]:
        from digest.issuefile import load_issue

        issue = load_issue(path, settings.limits)
        s, e = _number(form, "s"), _number(form, "e")
        if s >= len(issue.sections) or e >= len(issue.sections[s].experts):
            raise IssueFileError("no such expert in this issue")
        text = chosen_text(path, issue, s, e, _number(form, "from"), _number(form, "to"))
        saved = apply_edits(
            path, form.get("base", ""), {f"s{s}.e{e}.excerpt": text}, settings.limits
        )
        return path.stem, saved.changed

    @requires(state, "contributor")
    async def excerpt(request: Request, signed: Signed) -> Response:
        form: dict[str, str] = request.state.form
        path = issue_path(state.issues, request.path_params["name"])
        if refusal := await locked_out(state, path.stem, signed):
            return refusal
        try:
            name, changed = await state.call(pick, path, form)
        except StaleSave as stale:
            return conflict_page(state, signed, path.stem, stale)
        except DigestError as err:
            return await editor_page(state, path.stem, signed, 400, problem=str(err))
        if changed:
            await state.call(state.store.audit, signed.user.email, "edited", name, fields=changed)
        return see_other(state, f"/issues/{name}?done={'saved' if changed else 'unchanged'}")

    return [Route("/issues/{name:str}/excerpt", excerpt, methods=["POST"])]


__all__ = ["choices", "routes"]
