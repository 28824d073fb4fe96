"""Reordering an issue: ``POST /issues/<name>/arrange`` moves an expert or a conversation
up or down, sets it aside (kept in the file, never sent) or brings it back.

Fields: ``op`` (up, down, remove, restore), ``s`` (the conversation), ``e`` (the expert;
none for a conversation), ``base`` (the version the editor saw: a stale one is refused).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, locked_out, requires, see_other
from digest.desk.editing import StaleSave, arrange, issue_path
from digest.desk.issue_routes import conflict_page, editor_page
from digest.desk.sessions import Signed
from digest.errors import DigestError


def routes(state: DeskState) -> list[Route]:
    @requires(state, "contributor")
    async def arrange_issue(request: Request, signed: Signed) -> Response:
        form: dict[str, str] = request.state.form
        path = issue_path(state.issues, request.path_params["name"])
        if refusal := await locked_out(state, path.stem, signed):
            return refusal
        section, expert = form.get("s", ""), form.get("e", "")
        if not section.isdigit() or (expert and not expert.isdigit()):
            return await editor_page(state, path.stem, signed, 400, problem="no such place")
        try:
            done = await state.call(
                arrange, path, form.get("base", ""), form.get("op", ""), int(section),
                int(expert) if expert else None, state.settings.limits,
                state.settings.compose.excerpt.preheader_chars,
            )  # fmt: skip
        except StaleSave as stale:
            return conflict_page(state, signed, path.stem, stale)
        except DigestError as err:
            return await editor_page(state, path.stem, signed, 400, problem=str(err))
        await state.call(state.store.audit, signed.user.email, "arranged", path.stem, what=done)
        return see_other(state, f"/issues/{path.stem}?done=saved")

    return [Route("/issues/{name:str}/arrange", arrange_issue, methods=["POST"])]
