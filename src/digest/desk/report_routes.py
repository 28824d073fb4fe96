"""``GET /issues/<name>/report``: what happened to a scheduled or sent issue, the figures
of ``digest report`` as a page with its charts (any signed-in user)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest.desk.app import HEADERS, POLICY, DeskState, page, requires
from digest.desk.editing import NAME
from digest.desk.sessions import Signed
from digest.errors import DigestError, RenderError


def report_page(state: DeskState, name: str, signed: Signed) -> str:
    from digest.issuefile import load_issue
    from digest.render.headers import ascii_id
    from digest.report import as_html, make_report

    path = state.issues / f"{name}.yaml"
    read_more = {}
    if path.is_file():  # to name the expert behind each Read more click
        read_more = {
            e.read_more: e.name
            for section in load_issue(path, state.settings.limits).sections
            for e in section.experts
        }
    made = make_report(
        state.store, name, ascii_id(name), read_more, tracked=state.settings.provider.tracking
    )
    return as_html(made, state.settings, signed=signed, root=state.root)


def routes(state: DeskState) -> list[Route]:
    @requires(state, "contributor")
    async def report(request: Request, signed: Signed) -> Response:
        name = request.path_params["name"]
        if not NAME.match(name):
            return page(
                state, "message", 404, signed, kind="no_issue", detail=f"{name}: not an issue name"
            )
        try:
            html = await state.call(report_page, state, name, signed)
        except RenderError:
            raise  # a template of one's own that fails is not a missing issue
        except DigestError as err:
            return page(state, "message", 404, signed, kind="no_issue", detail=str(err))
        return HTMLResponse(html, headers=HEADERS | {"Content-Security-Policy": POLICY})

    return [Route("/issues/{name:str}/report", report, methods=["GET"])]
