"""Desk users, for admins: ``GET /users`` lists them; ``POST /users`` adds one (with a
first password to pass on), changes a role, disables or enables. The same as ``digest
users``; every change goes in the audit log. An admin cannot disable or demote themself
(there would be no one left to undo it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, page, requires
from digest.desk.sessions import Signed
from digest.errors import DigestError
from digest.store.desk import ROLES


def routes(state: DeskState) -> list[Route]:
    async def listing(signed: Signed, code: int = 200, **said: object) -> Response:
        users = await state.call(state.store.users)
        return page(state, "users", code, signed, users=users, roles=ROLES, **said)

    @requires(state, "admin")
    async def users(request: Request, signed: Signed) -> Response:
        if request.method != "POST":
            return await listing(signed)
        form: dict[str, str] = request.state.form
        action, email = form.get("action", ""), form.get("email", "").strip().lower()
        try:
            done = await state.call(change, state, signed, action, email, form)
        except DigestError as err:
            return await listing(signed, 400, problem=str(err))
        return await listing(signed, notice=done)

    return [Route("/users", users, methods=["GET", "POST"])]


def change(state: DeskState, signed: Signed, action: str, email: str, form: dict[str, str]) -> str:
    from digest.addresses import checked_address
    from digest.desk.passwords import hash_password

    store, me = state.store, signed.user.email
    if action == "add":
        address = checked_address(email)
        role = form.get("role", "")
        store.add_user(address, form.get("name", "").strip() or None, role,
                       hash_password(form.get("password", "")))  # fmt: skip
        store.audit(me, "user added", address, role=role)
        return f"Added {address} ({role}). Pass the password on; they can change it with digest users passwd."
    if email == me and action in ("disable", "role"):
        raise DigestError("you cannot disable or change your own role; ask another admin")
    if action == "role":
        role = form.get("role", "")
        store.update_user(email, role=role)
        store.audit(me, "role changed", email, role=role)
        return f"{email} is now {role}."
    if action in ("disable", "enable"):
        store.update_user(email, disabled=action == "disable")
        store.audit(me, f"user {action}d", email)
        return f"{email} is {action}d."
    raise DigestError(f"{action!r}: not something this page does")
