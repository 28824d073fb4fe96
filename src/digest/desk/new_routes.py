"""A new issue from the desk: paste the addresses of one or more conversations and the
desk composes them (the same code as ``digest compose``) into a new issue file, then
opens it.

``GET  /new``   the form
``POST /new``   compose; only http(s) addresses (a path on this machine is refused: the
                desk never reads the server's own files for a user), fetched under the
                same guard as the CLI's (no private addresses unless configured)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, page, requires, see_other
from digest.desk.sessions import Signed
from digest.errors import DigestError

MAX_SOURCES = 20


class AlreadyThere(DigestError):
    """The issue these sources make exists already (the editor's edits are in it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{name} exists already, with any edits made to it: open it from the issues"
            " list (or delete its file to compose it afresh)"
        )


def compose_new(state: DeskState, sources: list[str]) -> str:
    """Compose ``sources`` into a new issue file; its name (an existing one is kept)."""
    from digest.comments import comments_for, write_comments
    from digest.compose import compose_read
    from digest.issuefile import dump_issue, write_issue

    state.issues.mkdir(parents=True, exist_ok=True)
    issue, path, read = compose_read(sources, state.settings, out_dir=state.issues)
    if path.exists():
        raise AlreadyThere(path.stem)
    write_issue(dump_issue(issue), path, force=False)
    write_comments(path, comments_for(read, issue))
    return path.stem


def compose_entries(state: DeskState, entry_ids: list[str]) -> str:
    """Compose the ticked entries of the configured feeds into a new issue file."""
    from digest.comments import comments_for, write_comments
    from digest.compose import compose_from_feeds
    from digest.issuefile import dump_issue, write_issue

    state.issues.mkdir(parents=True, exist_ok=True)
    result = compose_from_feeds(
        list(state.settings.draft.feeds), state.settings, out_dir=state.issues,
        entry_ids=set(entry_ids),
    )  # fmt: skip
    write_issue(dump_issue(result.issue), result.path, force=False)
    write_comments(result.path, comments_for(list(result.conversations), result.issue))
    return result.path.stem


def offered(state: DeskState) -> tuple[list[Any], str]:
    """The configured feeds' new entries, or why they could not be read."""
    from digest.compose import new_feed_entries

    feeds = list(state.settings.draft.feeds)
    if not feeds:
        return [], ""
    try:
        return new_feed_entries(feeds, state.settings, out_dir=state.issues), ""
    except DigestError as err:
        return [], str(err)


def routes(state: DeskState) -> list[Route]:
    async def form_page(signed: Signed, code: int = 200, **said: Any) -> Response:
        entries, feed_problem = await state.call(offered, state)
        return page(state, "new", code, signed, entries=entries, feed_problem=feed_problem,
                    feeds=list(state.settings.draft.feeds), **said)  # fmt: skip

    @requires(state, "contributor")
    async def new_issue(request: Request, signed: Signed) -> Response:
        if request.method != "POST":
            return await form_page(signed)
        form: dict[str, str] = request.state.form
        ticked = [v for k, v in sorted(form.items()) if k.startswith("entry-") and v]
        if ticked:
            try:
                name = await state.call(compose_entries, state, ticked)
            except DigestError as err:
                return await form_page(signed, 400, problem=str(err))
            await state.call(state.store.audit, signed.user.email, "composed", name, entries=ticked)
            return see_other(state, f"/issues/{name}?done=composed")
        typed = form.get("sources", "")
        sources = [line.strip() for line in typed.splitlines() if line.strip()]
        problem = ""
        if not sources:
            problem = "Paste the address of at least one conversation."
        elif len(sources) > MAX_SOURCES:
            problem = f"At most {MAX_SOURCES} conversations in one issue."
        elif bad := [s for s in sources if not s.lower().startswith(("https://", "http://"))]:
            problem = f"{bad[0]}: not a web address (http:// or https://)"
        if problem:
            return await form_page(signed, 400, problem=problem, sources=typed)
        try:
            name = await state.call(compose_new, state, sources)
        except DigestError as err:
            return await form_page(signed, 400, problem=str(err), sources=typed)
        await state.call(state.store.audit, signed.user.email, "composed", name, sources=sources)
        return see_other(state, f"/issues/{name}?done=composed")

    return [Route("/new", new_issue, methods=["GET", "POST"])]
