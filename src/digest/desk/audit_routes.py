"""``GET /audit``: who signed in, edited, test-sent, scheduled and unscheduled, newest
first (editors and admins; ``digest audit`` prints the same)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, page, requires
from digest.desk.sessions import Signed

SHOWN = 500


def routes(state: DeskState) -> list[Route]:
    @requires(state, "editor")
    async def audit(request: Request, signed: Signed) -> Response:
        entries = await state.call(state.store.audit_entries, None, SHOWN)
        return page(state, "audit", signed=signed, entries=entries)

    return [Route("/audit", audit, methods=["GET"])]
