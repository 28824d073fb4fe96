"""What the desk does with an issue besides editing it.

``POST /issues/<name>/test-send``   to the editor's own address (anyone) or to the staff
                                    list (editors and admins), through the provider
``POST /issues/<name>/schedule``    at a local time in a time zone (editors and admins)
``POST /issues/<name>/unschedule``  (editors and admins)

Each answer is the editor page again with what happened; each act goes in the audit log.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, page, refreshed, requires
from digest.desk.approval import ask_for_approval
from digest.desk.editing import issue_path
from digest.desk.issue_routes import editor_page
from digest.desk.sessions import Signed
from digest.errors import DigestError


def routes(state: DeskState) -> list[Route]:
    settings = state.settings

    @requires(state, "contributor")
    async def test_send(request: Request, signed: Signed) -> Response:
        from digest.testsend import send_test

        form: dict[str, str] = request.state.form
        to_staff = form.get("to") == "staff"
        if to_staff and not signed.may("editor"):
            return page(state, "message", 403, signed, kind="role", role="editor")
        path = issue_path(state.issues, request.path_params["name"])
        addresses = None if to_staff else [signed.user.email]
        try:
            outcomes = await state.call(send_test, path, settings, to=addresses)
        except DigestError as err:
            return await editor_page(
                state, request.path_params["name"], signed, 400, problem=str(err)
            )
        await state.call(
            state.store.audit, signed.user.email, "test-sent", path.stem,
            to="staff" if to_staff else "self",
            outcomes={o.email: o.status for o in outcomes},
        )  # fmt: skip
        return await editor_page(state, request.path_params["name"], signed, 200, outcomes=outcomes)

    @requires(state, "editor")
    async def schedule_issue(request: Request, signed: Signed) -> Response:
        from digest.schedule import schedule, zone

        form: dict[str, str] = request.state.form
        path = issue_path(state.issues, request.path_params["name"])
        at = form.get("at", "").strip().replace("T", " ")
        zone_name = form.get("zone", "").strip() or settings.delivery.timezone
        if settings.desk.require_approval:
            return await ask_for_approval(state, path, at, zone_name, signed)
        try:
            frozen = await state.call(
                schedule, state.store, path, settings, at, zone_name, dt.datetime.now(dt.UTC)
            )
        except DigestError as err:
            return await editor_page(
                state, request.path_params["name"], signed, 400, problem=str(err)
            )
        local = frozen.send_at.astimezone(zone(zone_name))
        await state.call(state.store.remember_zone, signed.user.id, zone_name)
        signed = await refreshed(state, signed)
        await state.call(
            state.store.audit, signed.user.email, "scheduled", path.stem,
            at=f"{local:%Y-%m-%d %H:%M %Z}", utc=f"{frozen.send_at:%Y-%m-%d %H:%M}",
        )  # fmt: skip
        notice = (
            f"Scheduled for {local:%A %d %B %Y, %H:%M} {local:%Z} in {zone_name}"
            f" ({frozen.send_at:%Y-%m-%d %H:%M} UTC)."
        )
        return await editor_page(state, request.path_params["name"], signed, 200, notice=notice)

    @requires(state, "editor")
    async def unschedule_issue(request: Request, signed: Signed) -> Response:
        path = issue_path(state.issues, request.path_params["name"])
        cancelled = await state.call(state.store.cancel_schedule, path.stem)
        if not cancelled:
            return await editor_page(
                state,
                path.stem,
                signed,
                400,
                problem=f"{path.stem} is not scheduled; nothing to cancel",
            )
        await state.call(state.store.audit, signed.user.email, "unscheduled", path.stem)
        return await editor_page(
            state, request.path_params["name"], signed, 200, notice="Unscheduled."
        )

    return [
        Route("/issues/{name:str}/test-send", test_send, methods=["POST"]),
        Route("/issues/{name:str}/schedule", schedule_issue, methods=["POST"]),
        Route("/issues/{name:str}/unschedule", unschedule_issue, methods=["POST"]),
    ]
