"""The two-person rule (``desk.require_approval: true``): an editor's Schedule becomes a
request; a *different* editor or an admin approves it, and only then is the issue
scheduled (checked and frozen as ``digest schedule`` does). Delivery never sees an issue
before that. An approval is for the file as it was asked for: if the file changed since,
the approval is refused and the schedule must be asked for again.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, requires
from digest.desk.editing import issue_path, version_of
from digest.desk.issue_routes import editor_page
from digest.desk.sessions import Signed
from digest.errors import DigestError
from digest.store.approvals import ApprovalRequest
from digest.store.records import ScheduledIssue


def ask(state: DeskState, path: Path, at: str, zone_name: str, by: str) -> ApprovalRequest:
    """Check the issue and the time as scheduling would, then record the request."""
    from digest.build import build
    from digest.schedule import not_in_the_past, parse_send_time

    now = dt.datetime.now(dt.UTC)
    send_at = parse_send_time(at, zone_name, now)
    not_in_the_past(at, send_at, now)
    errors = [f for f in build(path, state.settings, for_subscribers=True).findings
              if f.level == "error"]  # fmt: skip
    if errors:
        raise DigestError(
            f"{path.name} fails the pre-send check with {len(errors)} error(s), first: "
            f"{errors[0].message}; nothing was asked for"
        )
    state.store.request_approval(path.stem, version_of(path.read_bytes()), send_at, zone_name, by)
    request = state.store.approval_request(path.stem)
    assert request is not None
    return request


def approve(state: DeskState, path: Path, by: str) -> tuple[ApprovalRequest, ScheduledIssue]:
    """Schedule what was asked for, when ``by`` is someone else and the file is the same."""
    from digest.schedule import schedule

    request = state.store.approval_request(path.stem)
    if request is None:
        raise DigestError(f"{path.stem}: no schedule is waiting for approval")
    if request.requested_by == by:
        raise DigestError(
            "you asked for this schedule yourself: another editor or an admin must approve it"
        )
    if version_of(path.read_bytes()) != request.version:
        raise DigestError(
            f"{path.name} changed since {request.requested_by} asked for the schedule: "
            "nothing was approved; ask for the schedule again"
        )
    at = request.send_at.isoformat()
    # the approved bytes and no others, even if someone saves while this runs
    frozen = schedule(
        state.store, path, state.settings, at, "UTC", dt.datetime.now(dt.UTC),
        expected_hash=request.version,
    )  # fmt: skip
    state.store.drop_approval(path.stem)
    return request, frozen


def _local(moment: dt.datetime, zone_name: str) -> str:
    from digest.schedule import zone

    local = moment.astimezone(zone(zone_name))
    return f"{local:%A %d %B %Y, %H:%M} {local:%Z} in {zone_name} ({moment:%Y-%m-%d %H:%M} UTC)"


async def ask_for_approval(
    state: DeskState, path: Path, at: str, zone_name: str, signed: Signed
) -> Response:
    """What Schedule does when approval is required: ask, and say so."""
    try:
        request = await state.call(ask, state, path, at, zone_name, signed.user.email)
    except DigestError as err:
        return await editor_page(state, path.stem, signed, 400, problem=str(err))
    await state.call(state.store.remember_zone, signed.user.id, zone_name)
    await state.call(
        state.store.audit, signed.user.email, "schedule requested", path.stem,
        utc=f"{request.send_at:%Y-%m-%d %H:%M}", zone=zone_name,
    )  # fmt: skip
    notice = (
        f"Asked for {_local(request.send_at, zone_name)}. Another editor or an admin must "
        "approve it; nothing is scheduled until then."
    )
    return await editor_page(state, path.stem, signed, 200, notice=notice)


def routes(state: DeskState) -> list[Route]:
    @requires(state, "editor")
    async def approve_issue(request: Request, signed: Signed) -> Response:
        path = issue_path(state.issues, request.path_params["name"])
        try:
            asked, frozen = await state.call(approve, state, path, signed.user.email)
        except DigestError as err:
            return await editor_page(state, path.stem, signed, 400, problem=str(err))
        await state.call(
            state.store.audit, signed.user.email, "approved", path.stem,
            requested_by=asked.requested_by, utc=f"{frozen.send_at:%Y-%m-%d %H:%M}",
        )  # fmt: skip
        notice = f"Approved: scheduled for {_local(frozen.send_at, asked.zone)}."
        return await editor_page(state, path.stem, signed, 200, notice=notice)

    @requires(state, "editor")
    async def withdraw(request: Request, signed: Signed) -> Response:
        path = issue_path(state.issues, request.path_params["name"])
        if not await state.call(state.store.drop_approval, path.stem):
            return await editor_page(
                state, path.stem, signed, 400, problem="no schedule is waiting for approval"
            )
        await state.call(state.store.audit, signed.user.email, "request withdrawn", path.stem)
        return await editor_page(state, path.stem, signed, 200, notice="Request withdrawn.")

    return [
        Route("/issues/{name:str}/approve", approve_issue, methods=["POST"]),
        Route("/issues/{name:str}/withdraw", withdraw, methods=["POST"]),
    ]
