"""The user's own account: name and time zone."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from orbit.frontend.pages import go, invalid, page
from orbit.platform.auth.service import AccountService, available_time_zones
from orbit.platform.errors import NotAuthenticatedError, OrbitError
from orbit.platform.runtime import Runtime
from orbit.tenants.context import Principal

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


class AccountSettingsPages(Controller):
    """``/account``: settings that follow the user into every workspace."""

    path = "/account"
    include_in_schema = False

    @get("/")
    async def account(self, principal: Principal, accounts: AccountService) -> Template:
        """The account form."""
        user = await _current(principal, accounts)
        form = {"name": user.name, "time_zone": user.time_zone}
        return page(
            "account.html", principal, form=form, errors={}, zones=_zones(), email=user.email
        )

    @post("/")
    async def save(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        accounts: AccountService,
        runtime: Runtime,
        data: Form,
    ) -> Response[Any]:
        """Save name and time zone; the session picks the time zone up at once."""
        user = await _current(principal, accounts)
        try:
            updated = await accounts.update_profile(
                user.id, name=str(data.get("name", "")), time_zone=str(data.get("time_zone", ""))
            )
        except OrbitError as exc:
            return invalid(
                "account.html", principal, exc, form=data, zones=_zones(), email=user.email
            )
        if principal.session_id:
            session = await runtime.sessions.load(principal.session_id)
            if session is not None:
                session.time_zone = updated.time_zone
                await runtime.sessions.save(session)
        return go(request, "/account")


async def _current(principal: Principal, accounts: AccountService) -> Any:
    if principal.user_id is None:
        raise NotAuthenticatedError("log in first")
    user = await accounts.get(principal.user_id)
    if user is None:
        raise NotAuthenticatedError("log in first")
    return user


def _zones() -> list[str]:
    return sorted(available_time_zones())
