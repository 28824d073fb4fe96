"""A new issue from the desk: paste the addresses of one or more conversations and the
desk composes them (the same code as ``digest compose``) into a new issue file, then
opens it.

``GET  /new``   the form
``POST /new``   compose; only http(s) addresses (a path on this machine is refused: the
                desk never reads the server's own files for a user), fetched under the
                same guard as the CLI's (no private addresses unless configured)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, page, requires, see_other
from digest.desk.sessions import Signed
from digest.errors import DigestError

MAX_SOURCES = 20


def compose_new(state: DeskState, sources: list[str]) -> str:
    """Compose ``sources`` into a new issue file; its name (an existing one is kept)."""
    from digest.comments import comments_for, write_comments
    from digest.compose import compose_read
    from digest.issuefile import dump_issue, write_issue

    state.issues.mkdir(parents=True, exist_ok=True)
    issue, path, read = compose_read(sources, state.settings, out_dir=state.issues)
    write_issue(dump_issue(issue), path, force=False)
    write_comments(path, comments_for(read, issue))
    return path.stem


def routes(state: DeskState) -> list[Route]:
    @requires(state, "contributor")
    async def new_issue(request: Request, signed: Signed) -> Response:
        if request.method != "POST":
            return page(state, "new", signed=signed)
        form: dict[str, str] = request.state.form
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
            return page(state, "new", 400, signed, problem=problem, sources=typed)
        try:
            name = await state.call(compose_new, state, sources)
        except DigestError as err:
            return page(state, "new", 400, signed, problem=str(err), sources=typed)
        await state.call(state.store.audit, signed.user.email, "composed", name, sources=sources)
        return see_other(state, f"/issues/{name}?done=composed")

    return [Route("/new", new_issue, methods=["GET", "POST"])]
