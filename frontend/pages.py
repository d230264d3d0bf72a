"""Page controllers: thin handlers that call the same services as the JSON API."""

from __future__ import annotations

import unicodedata
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_404_NOT_FOUND, HTTP_422_UNPROCESSABLE_ENTITY

from orbit.frontend.view_pages import ViewPages, view_context, view_state
from orbit.platform.audit.service import AuditService
from orbit.platform.auth.api_keys import ApiKeyService
from orbit.platform.auth.controllers import client_ip
from orbit.platform.auth.middleware import session_cookie
from orbit.platform.auth.service import Account, AccountService
from orbit.platform.auth.sessions import TTL_SECONDS
from orbit.platform.crm.activities import ActivityService
from orbit.platform.crm.custom_fields import FILTER_PREFIX, CustomFieldService, custom_filters
from orbit.platform.crm.deals import DealService
from orbit.platform.crm.schemas import (
    ContactCreate,
    ContactPage,
    ContactPatch,
    CustomFieldCreate,
    CustomFieldOut,
    CustomObjectType,
)
from orbit.platform.crm.service import ContactService, display_name
from orbit.platform.crm.views import SavedViewService
from orbit.platform.errors import (
    InvalidInputError,
    NotAuthenticatedError,
    OrbitError,
    PaymentRequiredError,
)
from orbit.platform.ids import parse_id
from orbit.platform.runtime import Runtime
from orbit.plugins.ui import record_plugins
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.controllers import accept_url
from orbit.tenants.roles import API_KEY_SCOPES, INVITABLE_ROLES, Scope
from orbit.tenants.service import Workspace, WorkspaceService
from orbit.tenants.visibility import VISIBILITIES, VisibilityService

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]


def _local_path(path: str) -> bool:
    """Whether ``path`` stays on this site (no open redirect after login).

    Browsers read a backslash as ``/`` and drop tabs and newlines from URLs, so
    such characters could turn a path into another host; only plain paths pass.
    """
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        return False
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc


def go(request: AnyRequest, url: str) -> Response[Any]:
    """Navigate to ``url``: an ``HX-Redirect`` for htmx, a 303 otherwise."""
    url = quote(url, safe="/?&=%#:-._~")  # a header value: no raw spaces, CR/LF or non-ASCII
    if request.headers.get("hx-request"):
        return Response(None, status_code=204, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)


def page(template: str, principal: Principal, status_code: int = 200, **context: Any) -> Template:
    """Render a page with what the base layout needs."""
    return Template(
        template,
        context={"principal": principal, "tenant": principal.tenant, **context},
        status_code=status_code,
    )


def live_list(request: AnyRequest, folder: str, principal: Principal, **context: Any) -> Template:
    """A searchable list page: the whole page, or just its rows for htmx's live search.

    A history restore (Back) needs the whole page even though htmx asks for it,
    and since one URL has two bodies, caches must vary on those headers.
    """
    rows_only = bool(request.headers.get("hx-request")) and not request.headers.get(
        "hx-history-restore-request"
    )
    response = page(
        f"{folder}/_rows.html" if rows_only else f"{folder}/list.html", principal, **context
    )
    response.headers["Vary"] = "HX-Request, HX-History-Restore-Request"
    return response


def invalid(template: str, principal: Principal, exc: OrbitError, **context: Any) -> Template:
    """Re-render a form with its errors (422, swapped in by htmx).

    A plan limit (402, e.g. the contact quota) is about no field of the form: its
    message goes on top of the form.
    """
    errors = dict(exc.fields) or {"form": exc.message}
    if isinstance(exc, PaymentRequiredError):
        errors["form"] = exc.message
    return page(
        template,
        principal,
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
        errors=errors,
        message=exc.message,
        **context,
    )


async def log_in_as(
    request: AnyRequest,
    runtime: Runtime,
    account: Account,
    workspace: Workspace | None,
    next_path: str | None = None,
) -> Response[Any]:
    """Start a session and go to ``next_path``, the workspace, or the workspace list."""
    session = await runtime.sessions.create(
        account.id, workspace.slug if workspace else None, account.time_zone
    )
    home = f"/t/{workspace.slug}/" if workspace else "/workspaces"
    response = go(request, next_path or home)
    response.set_cookie(
        session_cookie(session.id, secure=runtime.settings.cookie_secure, max_age=TTL_SECONDS)
    )
    return response


class AccountPages(Controller):
    """Sign-up, login, logout, the workspace list and invitation links."""

    include_in_schema = False

    @get("/")
    async def home(self, principal: Principal) -> Response[Any]:
        """The user's workspace, or the login page."""
        if principal.user_id is None:
            return Redirect("/login")
        if principal.tenant:
            return Redirect(f"/t/{principal.tenant.tenant_slug}/")
        return Redirect("/workspaces")

    @get("/signup")
    async def signup_form(self, principal: Principal) -> Template:
        """The sign-up form."""
        return page("auth/signup.html", principal, form={}, errors={})

    @post("/signup")
    async def sign_up(
        self,
        request: AnyRequest,
        principal: Principal,
        data: Form,
        accounts: AccountService,
        runtime: Runtime,
    ) -> Response[Any]:
        """Create the user and workspace, then open it."""
        try:
            account, workspace = await accounts.sign_up(
                ip=client_ip(request),
                email=str(data.get("email", "")),
                password=str(data.get("password", "")),
                name=str(data.get("name", "")),
                workspace_name=str(data.get("workspace_name", "")),
            )
        except OrbitError as exc:
            return invalid("auth/signup.html", principal, exc, form=data)
        return await log_in_as(request, runtime, account, workspace)

    @get("/login")
    async def login_form(
        self, principal: Principal, next_path: Annotated[str, Parameter(query="next")] = ""
    ) -> Template:
        """The login form."""
        return page("auth/login.html", principal, form={"next": next_path}, errors={})

    @post("/login")
    async def log_in(
        self,
        request: AnyRequest,
        principal: Principal,
        data: Form,
        accounts: AccountService,
        runtime: Runtime,
    ) -> Response[Any]:
        """Check the credentials and open the first workspace."""
        try:
            account = await accounts.log_in(
                str(data.get("email", "")), str(data.get("password", "")), ip=client_ip(request)
            )
        except OrbitError as exc:
            form = {"email": data.get("email", "")}
            return invalid("auth/login.html", principal, exc, form=form)
        mine = await accounts.workspaces.user_workspaces(account.id)
        workspace = await accounts.workspaces.by_slug(mine[0][0]) if mine else None
        next_path = str(data.get("next", ""))
        safe_next = next_path if _local_path(next_path) else None
        return await log_in_as(request, runtime, account, workspace, next_path=safe_next)

    @post("/logout")
    async def log_out(
        self, request: AnyRequest, principal: Principal, runtime: Runtime
    ) -> Response[Any]:
        """End the session."""
        if principal.session_id:
            await runtime.sessions.delete(principal.session_id)
        response = go(request, "/login")
        response.set_cookie(session_cookie("", secure=runtime.settings.cookie_secure, max_age=0))
        return response

    @get("/workspaces")
    async def workspace_list(self, principal: Principal, workspaces: WorkspaceService) -> Template:
        """Every workspace of the user: the switcher."""
        if principal.user_id is None:
            raise NotAuthenticatedError("log in first")
        mine = await workspaces.user_workspaces(principal.user_id)
        return page("workspaces.html", principal, workspaces=mine)

    @get("/invite/{token:str}")
    async def invitation(
        self, principal: Principal, workspaces: WorkspaceService, token: str
    ) -> Template:
        """An invitation: accept it (logged in) or create an account to accept it."""
        pending = await workspaces.pending_invitation(token)
        return page("invite.html", principal, invitation=pending, token=token, form={}, errors={})

    @post("/invite/{token:str}")
    async def accept_invitation(
        self,
        request: AnyRequest,
        principal: Principal,
        workspaces: WorkspaceService,
        accounts: AccountService,
        runtime: Runtime,
        token: str,
        data: Form,
    ) -> Response[Any]:
        """Accept: join as the logged-in user, or as a new account made from the form."""
        pending = await workspaces.pending_invitation(token)
        if principal.user_id is not None:
            workspace = await workspaces.accept(token, principal.user_id, client_ip(request))
            return go(request, f"/t/{workspace.slug}/")
        try:
            account = await accounts.create_user(
                pending.email, str(data.get("password", "")), str(data.get("name", ""))
            )
        except OrbitError as exc:
            return invalid(
                "invite.html", principal, exc, invitation=pending, token=token, form=data
            )
        workspace = await workspaces.accept(token, account.id, client_ip(request))
        return await log_in_as(request, runtime, account, workspace)


def _contact_form_values(data: dict[str, Any]) -> dict[str, Any]:
    tags = [t.strip() for t in str(data.get("tags", "")).split(",") if t.strip()]
    values: dict[str, Any] = {
        key: str(data.get(key, "")).strip()
        for key in ("first_name", "last_name", "email", "phone", "company_name")
    }
    values["tags"] = tags
    return values


def custom_form_values(data: dict[str, Any], fields: list[CustomFieldOut]) -> dict[str, Any]:
    """The ``custom.<key>`` inputs of a form as a record's custom values.

    An empty input becomes ``None`` (the service drops it, or names a required field);
    an unticked checkbox is ``False``; a multi-select is always a list.
    """
    values: dict[str, Any] = {}
    for custom_field in fields:
        raw = data.get(f"{FILTER_PREFIX}{custom_field.key}")
        if custom_field.type == "checkbox":
            values[custom_field.key] = str(raw).lower() in {"true", "on", "1"}
        elif custom_field.type == "multi_select":
            values[custom_field.key] = raw if isinstance(raw, list) else [raw] if raw else []
        else:
            values[custom_field.key] = str(raw).strip() if raw is not None else None
    return values


def custom_form_prefill(custom: dict[str, Any], fields: list[CustomFieldOut]) -> dict[str, Any]:
    """A record's custom values as the ``custom.<key>`` inputs of its form."""
    return {f"{FILTER_PREFIX}{f.key}": custom.get(f.key) for f in fields if f.key in custom}


async def custom_fields_of(
    db: Any, tenant: TenantContext, object_type: str
) -> list[CustomFieldOut]:
    """The workspace's fields of ``object_type``, for a form or a detail page."""
    return await CustomFieldService(db).definitions(tenant, [object_type])


FILTERABLE_TYPES = frozenset({"select", "multi_select", "checkbox"})


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The custom-field filters of a list page: what the query asks for and what is offered."""

    custom: dict[str, list[str]]
    fields: list[CustomFieldOut]
    chosen: dict[str, str]
    query: str
    """The filters as a query string, for "Load more" links."""


async def list_filters(
    request: AnyRequest, db: Any, tenant: TenantContext, object_type: str
) -> ListFilters:
    """Read ``custom.<key>=value`` from the query; offer the choice-type fields as filters."""
    custom = custom_filters(request.query_params.multi_items())
    fields = [
        field
        for field in await custom_fields_of(db, tenant, object_type)
        if field.type in FILTERABLE_TYPES
    ]
    chosen = {name: values[0] for name, values in custom.items() if values}
    return ListFilters(custom, fields, chosen, urlencode(list(chosen.items())))


def convert_form(cls: type[Any], values: dict[str, Any]) -> Any:
    """Form values as ``cls``; msgspec's complaint becomes a 400 naming the field."""
    try:
        return msgspec.convert(values, cls)
    except msgspec.ValidationError as exc:
        # "Expected `str` of length <= 100 - at `$.first_name`" → field first_name
        message = str(exc)
        field = message.rpartition("$.")[2].rstrip("`").split("[")[0] or "form"
        raise InvalidInputError(message, fields={field: message.partition(" - at")[0]}) from None


class WorkspacePages(Controller):
    """Pages inside a workspace: ``/t/{slug}/…``."""

    path = "/t/{slug:str}"
    include_in_schema = False

    @get("/contacts")
    async def contact_list(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        contacts: ContactService,
        q: str = "",
        cursor: str | None = None,
    ) -> Template:
        """The contact list with live search and saved views; htmx asks for just the rows."""
        filters = await list_filters(request, contacts.db, tenant, "contact")
        state = await view_state(request, SavedViewService(contacts.db), tenant, "contact")
        notice = None
        try:
            result = await contacts.find(
                tenant, q=q, cursor=cursor, custom=filters.custom, spec=state.spec
            )
        except InvalidInputError as exc:
            result, notice = ContactPage(items=[], next_cursor=None), exc.message
        return live_list(
            request,
            "contacts",
            principal,
            contacts=result.items,
            items=result.items,
            detail_url=f"/t/{tenant.tenant_slug}/contacts",
            next_cursor=result.next_cursor,
            q=q,
            filters=filters,
            notice=notice,
            display_name=display_name,
            can_write=Scope.CONTACTS_WRITE in tenant.scopes,
            **view_context(state, tenant),
        )

    @get("/contacts/new")
    async def new_contact(
        self, principal: Principal, tenant: TenantContext, contacts: ContactService
    ) -> Template:
        """An empty contact form."""
        tenant.require(Scope.CONTACTS_WRITE)
        return page(
            "contacts/form.html",
            principal,
            contact=None,
            form={},
            errors={},
            custom_fields=await custom_fields_of(contacts.db, tenant, "contact"),
        )

    @post("/contacts")
    async def create_contact(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        contacts: ContactService,
        data: Form,
    ) -> Response[Any]:
        """Create from the form; errors come back inline."""
        values = _contact_form_values(data)
        fields = await custom_fields_of(contacts.db, tenant, "contact")
        values["custom"] = custom_form_values(data, fields)
        try:
            created = await contacts.create(
                tenant, convert_form(ContactCreate, {**values, "email": values["email"] or None})
            )
        except OrbitError as exc:
            return invalid(
                "contacts/form.html", principal, exc, contact=None, form=data, custom_fields=fields
            )
        return go(request, f"/t/{tenant.tenant_slug}/contacts/{created.id}")

    @get("/contacts/{contact_id:str}")
    async def contact_detail(
        self,
        principal: Principal,
        tenant: TenantContext,
        contacts: ContactService,
        runtime: Runtime,
        contact_id: str,
    ) -> Template:
        """One contact with its timeline and deals."""
        contact = await contacts.get(tenant, parse_id(contact_id, "contact"))
        return page(
            "contacts/detail.html",
            principal,
            contact=contact,
            custom_fields=await custom_fields_of(contacts.db, tenant, "contact"),
            name=display_name(contact),
            can_write=Scope.CONTACTS_WRITE in tenant.scopes,
            timeline=await ActivityService(contacts.db).timeline(tenant, "contact", contact.id),
            deals=(await DealService(contacts.db).find(tenant, contact_id=contact.id)).items,
            history=(await AuditService(contacts.db).history(tenant, "contact", contact.id)).items,
            **await record_plugins(runtime.plugins, tenant, "contact", contact.id),
        )

    @get("/contacts/{contact_id:str}/edit")
    async def edit_contact(
        self,
        principal: Principal,
        tenant: TenantContext,
        contacts: ContactService,
        contact_id: str,
    ) -> Template:
        """The contact form, filled in."""
        tenant.require(Scope.CONTACTS_WRITE)
        contact = await contacts.get(tenant, parse_id(contact_id, "contact"))
        form = msgspec.structs.asdict(contact)
        form["tags"] = ", ".join(contact.tags)
        fields = await custom_fields_of(contacts.db, tenant, "contact")
        form.update(custom_form_prefill(contact.custom, fields))
        return page(
            "contacts/form.html",
            principal,
            contact=contact,
            form=form,
            errors={},
            custom_fields=fields,
        )

    @post("/contacts/{contact_id:str}")
    async def update_contact(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        contacts: ContactService,
        contact_id: str,
        data: Form,
    ) -> Response[Any]:
        """Save the form; errors come back inline."""
        contact = await contacts.get(tenant, parse_id(contact_id, "contact"))
        values = _contact_form_values(data)
        for optional in ("email", "phone", "company_name"):
            values[optional] = values[optional] or None
        fields = await custom_fields_of(contacts.db, tenant, "contact")
        # The form holds only defined fields: free-form values stay as they are.
        values["custom"] = {**contact.custom, **custom_form_values(data, fields)}
        try:
            await contacts.update(tenant, contact.id, convert_form(ContactPatch, values))
        except OrbitError as exc:
            return invalid(
                "contacts/form.html",
                principal,
                exc,
                contact=contact,
                form=data,
                custom_fields=fields,
            )
        return go(request, f"/t/{tenant.tenant_slug}/contacts/{contact.id}")

    @post("/contacts/{contact_id:str}/delete")
    async def delete_contact(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        contacts: ContactService,
        contact_id: str,
    ) -> Response[Any]:
        """Delete and return to the list."""
        await contacts.delete(tenant, parse_id(contact_id, "contact"))
        return go(request, f"/t/{tenant.tenant_slug}/contacts")

    @get("/members")
    async def members(
        self, principal: Principal, tenant: TenantContext, workspaces: WorkspaceService
    ) -> Template:
        """Members and open invitations; admins invite from here."""
        return await self._members_page(principal, tenant, workspaces)

    @post("/members/invitations")
    async def invite(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        data: Form,
    ) -> Template:
        """Invite an email; the page shows the link to send."""
        try:
            invitation, token = await workspaces.invite(
                tenant, str(data.get("email", "")), str(data.get("role", "member"))
            )
        except OrbitError as exc:
            return await self._members_page(
                principal,
                tenant,
                workspaces,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors=exc.fields or {"form": exc.message},
                form=data,
            )
        return await self._members_page(
            principal,
            tenant,
            workspaces,
            invite_link=accept_url(
                str(request.base_url),
                token,
                email=invitation["email"],
                workspace=tenant.tenant_slug,
            ),
        )

    @post("/members/role")
    async def change_role(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        data: Form,
    ) -> Response[Any]:
        """Save a member's new role."""
        membership_id = parse_id(str(data.get("membership_id", "")), "member")
        change = workspaces.change_role(tenant, membership_id, str(data.get("role", "")))
        return await self._member_change(
            request, principal, tenant, workspaces, change, "member_role"
        )

    @post("/members/status")
    async def change_status(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        data: Form,
    ) -> Response[Any]:
        """Deactivate a member or activate them again (a seat; billing follows)."""
        membership_id = parse_id(str(data.get("membership_id", "")), "member")
        active = data.get("status") == "active"
        change = workspaces.set_member_status(tenant, membership_id, active=active)
        return await self._member_change(
            request, principal, tenant, workspaces, change, "member_status"
        )

    async def _member_change(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        change: Coroutine[Any, Any, object],
        error_key: str,
    ) -> Response[Any]:
        """Make ``change`` to a member, then back to the team page (its error shown there)."""
        try:
            await change
        except OrbitError as exc:
            if exc.status_code == HTTP_404_NOT_FOUND:
                raise
            return await self._members_page(
                principal,
                tenant,
                workspaces,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors={error_key: exc.message},
            )
        return go(request, f"/t/{tenant.tenant_slug}/members")

    @post("/members/invitations/{invitation_id:str}/revoke")
    async def revoke_invitation(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        invitation_id: str,
    ) -> Response[Any]:
        """Revoke an invitation."""
        await workspaces.revoke_invitation(tenant, parse_id(invitation_id, "invitation"))
        return go(request, f"/t/{tenant.tenant_slug}/members")

    async def _members_page(
        self,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        context.setdefault("errors", {})
        context.setdefault("form", {})
        can_invite = Scope.MEMBERS_WRITE in tenant.scopes
        visibility = VisibilityService(workspaces.db)
        return page(
            "members.html",
            principal,
            status_code=status_code,
            members=await workspaces.members(tenant),
            invitations=await workspaces.invitations(tenant) if can_invite else [],
            roles=[r.value for r in INVITABLE_ROLES],
            can_invite=can_invite,
            visibility=await visibility.settings(tenant),
            visibilities=VISIBILITIES,
            teams=await visibility.teams(tenant),
            **context,
        )

    @post("/members/visibility")
    async def set_visibility(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        visibility: VisibilityService,
        data: Form,
    ) -> Response[Any]:
        """Save which records members and viewers see."""
        values: dict[str, str] = {
            role: str(data[role]) for role in ("member", "viewer") if role in data
        }
        try:
            await visibility.set(tenant, values)
        except OrbitError as exc:
            return await self._members_page(
                principal,
                tenant,
                workspaces,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors=exc.fields,
            )
        return go(request, f"/t/{tenant.tenant_slug}/members")

    @post("/members/teams")
    async def create_team(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        visibility: VisibilityService,
        data: Form,
    ) -> Response[Any]:
        """Add a team."""
        try:
            await visibility.create_team(tenant, str(data.get("name", "")))
        except OrbitError as exc:
            return await self._members_page(
                principal,
                tenant,
                workspaces,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors={f"team_{k}": v for k, v in exc.fields.items()},
            )
        return go(request, f"/t/{tenant.tenant_slug}/members")

    @post("/members/teams/{team_id:str}")
    async def set_team_members(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        visibility: VisibilityService,
        team_id: str,
    ) -> Response[Any]:
        """Save who is in a team (ticked members)."""
        form = await request.form()
        members = [parse_id(str(value), "member") for value in form.getall("membership_ids", [])]
        await visibility.set_members(tenant, parse_id(team_id, "team"), members)
        return go(request, f"/t/{tenant.tenant_slug}/members")

    @post("/members/teams/{team_id:str}/delete")
    async def delete_team(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        visibility: VisibilityService,
        team_id: str,
    ) -> Response[Any]:
        """Delete a team."""
        await visibility.delete_team(tenant, parse_id(team_id, "team"))
        return go(request, f"/t/{tenant.tenant_slug}/members")

    @get("/api-keys")
    async def api_keys(
        self, principal: Principal, tenant: TenantContext, api_keys: ApiKeyService
    ) -> Template:
        """The workspace's API keys."""
        return await self._keys_page(principal, tenant, api_keys)

    @post("/api-keys")
    async def create_api_key(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        api_keys: ApiKeyService,
    ) -> Template:
        """Create a key and show it once."""
        form = await request.form()
        scopes = [str(s) for s in form.getall("scopes", [])]
        try:
            _, key = await api_keys.create(tenant, str(form.get("name", "")), scopes)
        except OrbitError as exc:
            return await self._keys_page(
                principal,
                tenant,
                api_keys,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors=exc.fields or {"form": exc.message},
                form={"name": form.get("name", "")},
            )
        return await self._keys_page(principal, tenant, api_keys, new_key=key)

    @post("/api-keys/{key_id:str}/revoke")
    async def revoke_api_key(
        self, request: AnyRequest, tenant: TenantContext, api_keys: ApiKeyService, key_id: str
    ) -> Response[Any]:
        """Revoke a key."""
        await api_keys.revoke(tenant, parse_id(key_id, "API key"))
        return go(request, f"/t/{tenant.tenant_slug}/api-keys")

    async def _keys_page(
        self,
        principal: Principal,
        tenant: TenantContext,
        api_keys: ApiKeyService,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        context.setdefault("errors", {})
        context.setdefault("form", {})
        return page(
            "api_keys.html",
            principal,
            status_code=status_code,
            keys=await api_keys.list(tenant),
            scopes=[s.value for s in API_KEY_SCOPES],
            **context,
        )


class CustomFieldPages(Controller):
    """The custom fields settings page: ``/t/{slug}/custom-fields`` (``custom_fields:write``)."""

    path = "/t/{slug:str}/custom-fields"
    include_in_schema = False

    @get("/")
    async def custom_fields_page(
        self, principal: Principal, tenant: TenantContext, custom_fields: CustomFieldService
    ) -> Template:
        """Every custom field by object type, and a form to add one."""
        return await _custom_fields_page(principal, tenant, custom_fields)

    @post("/")
    async def add_custom_field(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        custom_fields: CustomFieldService,
        data: Form,
    ) -> Response[Any]:
        """Add a field; errors come back inline, nothing written."""
        options = [o.strip() for o in str(data.get("options", "")).split(",") if o.strip()]
        values = {
            "object_type": str(data.get("object_type", "")),
            "key": str(data.get("key", "")).strip(),
            "label": str(data.get("label", "")).strip(),
            "type": str(data.get("type", "")),
            "options": options,
            "required": str(data.get("required", "")).lower() in {"true", "on", "1"},
        }
        try:
            await custom_fields.create(tenant, convert_form(CustomFieldCreate, values))
        except OrbitError as exc:
            return await _custom_fields_page(
                principal,
                tenant,
                custom_fields,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors=exc.fields or {"form": exc.message},
                form=data,
            )
        return go(request, f"/t/{tenant.tenant_slug}/custom-fields")

    @post("/{field_id:str}/delete")
    async def remove_custom_field(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        custom_fields: CustomFieldService,
        field_id: str,
    ) -> Response[Any]:
        """Remove a field (records keep their values as free-form data)."""
        await custom_fields.delete(tenant, parse_id(field_id, "custom field"))
        return go(request, f"/t/{tenant.tenant_slug}/custom-fields")


CUSTOM_OBJECT_TYPES: tuple[CustomObjectType, ...] = ("contact", "company", "deal")
CUSTOM_FIELD_TYPES = (
    "text",
    "long_text",
    "number",
    "decimal",
    "date",
    "select",
    "multi_select",
    "checkbox",
    "url",
    "email",
)


async def _custom_fields_page(
    principal: Principal,
    tenant: TenantContext,
    custom_fields: CustomFieldService,
    status_code: int = 200,
    **context: Any,
) -> Template:
    tenant.require(Scope.CUSTOM_FIELDS_WRITE)
    context.setdefault("errors", {})
    context.setdefault("form", {"object_type": "contact", "type": "text"})
    fields = await custom_fields.definitions(tenant, list(CUSTOM_OBJECT_TYPES))
    return page(
        "custom_fields.html",
        principal,
        status_code=status_code,
        groups=[(t, [f for f in fields if f.object_type == t]) for t in CUSTOM_OBJECT_TYPES],
        field_types=CUSTOM_FIELD_TYPES,
        object_types=CUSTOM_OBJECT_TYPES,
        **context,
    )


PAGE_CONTROLLERS = [ViewPages, AccountPages, WorkspacePages, CustomFieldPages]
