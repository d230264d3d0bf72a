"""What a plugin gets when it acts for one tenant, and the values hooks exchange with Orbit.

:class:`PluginContext` carries the tenant, settings, scopes and services; events,
fragments, widgets, timeline entries and jobs are the values hooks take or return.

A context's services check the scopes the tenant's admin granted the plugin before
anything else and raise :class:`ScopeError` otherwise. They read through the
tenant's own transaction, where row-level security shows that tenant's rows only.
A plugin's own SQL (``ctx.db``) runs as the ``orbit_plugin_data`` role, which may
touch plugin tables only, inside a savepoint that is rolled back if the hook fails.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from orbit.platform.errors import PermissionDeniedError
from orbit.plugins.links import TokenError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from datetime import datetime, timedelta
    from decimal import Decimal
    from uuid import UUID

    import asyncpg

    from orbit.platform.db.engine import Database
    from orbit.plugins.links import PluginLinks


class ScopeError(PermissionDeniedError):
    """The plugin used a service outside the scopes the tenant granted it (a 403)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A committed domain event (``contact.created``, ``deal.won``, …)."""

    id: UUID
    """Stable across redeliveries: key idempotent effects on it."""
    type: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fragment:
    """HTML a plugin puts into a page slot, under a title.

    ``html`` is inserted as it is: escape anything that came from users (Jinja2
    autoescaping or :func:`markupsafe.escape` do).
    """

    title: str
    html: str


@dataclass(frozen=True, slots=True)
class Widget:
    """A dashboard card."""

    title: str
    html: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line a plugin adds to a record's timeline."""

    occurred_at: datetime
    title: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A coroutine the worker runs every ``every`` for each tenant that enabled the plugin."""

    name: str
    every: timedelta
    run: Callable[[PluginContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact as plugins see it."""

    id: UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company_id: UUID | None
    owner_id: UUID | None
    tags: tuple[str, ...]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal as plugins see it."""

    id: UUID
    title: str
    amount: Decimal
    currency: str
    status: str
    pipeline_id: UUID
    stage_id: UUID
    company_id: UUID | None
    owner_id: UUID | None
    expected_close_date: Any
    created_at: datetime
    updated_at: datetime


class PluginDatabase:
    """SQL on the plugin's own tables, in the tenant's transaction (``ctx.db``).

    Runs as ``orbit_plugin_data`` (DML on plugin tables only) under row-level
    security: the tenant's rows are the only ones visible, and a row written for
    another tenant is refused. The first query opens a savepoint; Orbit releases it
    when the hook returns and rolls it back when the hook fails.
    """

    def __init__(self, db: Database, plugin_id: str) -> None:
        self._db = db
        self._savepoint = f"orbit_plugin_{plugin_id}"
        self.opened = False

    async def _enter(self) -> None:
        if not self.opened:
            await self._db.execute(f"SAVEPOINT {self._savepoint}; SET LOCAL ROLE orbit_plugin_data")
            self.opened = True

    async def settle(self, *, ok: bool) -> None:
        """End the savepoint: keep the plugin's writes, or undo them (Orbit calls this)."""
        if not self.opened:
            return
        self.opened = False
        if ok:
            await self._db.execute(f"RESET ROLE; RELEASE SAVEPOINT {self._savepoint}")
        else:
            # Rolling back to the savepoint also undoes SET LOCAL ROLE.
            await self._db.execute(
                f"ROLLBACK TO SAVEPOINT {self._savepoint}; RELEASE SAVEPOINT {self._savepoint}"
            )

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Rows of ``query`` (``$1``… placeholders)."""
        await self._enter()
        return await self._db.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        """The first row of ``query``."""
        await self._enter()
        return await self._db.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        """The first value of ``query``."""
        await self._enter()
        return await self._db.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        """Run ``query``; its status."""
        await self._enter()
        return await self._db.execute(query, *args)


class _Scoped:
    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx

    async def _fetchrow(self, scope: str, query: str, *args: object) -> asyncpg.Record | None:
        rows = await self._fetch(scope, query, *args)
        return rows[0] if rows else None

    async def _fetch(self, scope: str, query: str, *args: object) -> list[asyncpg.Record]:
        self._ctx.require(scope)
        db = self._ctx.core_db
        if not self._ctx.db.opened:
            return await db.fetch(query, self._ctx.tenant_id, *args)
        # The plugin's own SQL switched to orbit_plugin_data: read as the app role, switch back.
        await db.execute("RESET ROLE")
        try:
            return await db.fetch(query, self._ctx.tenant_id, *args)
        finally:
            await db.execute("SET LOCAL ROLE orbit_plugin_data")


def _contact(row: asyncpg.Record) -> Contact:
    custom = row["custom"]
    return Contact(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        phone=row["phone"],
        company_id=row["company_id"],
        owner_id=row["owner_id"],
        tags=tuple(row["tags"]),
        custom=json.loads(custom) if isinstance(custom, str) else dict(custom),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_CONTACT_COLUMNS = (
    "id, first_name, last_name, email, phone, company_id, owner_id, tags, custom, "
    "created_at, updated_at"
)


class Contacts(_Scoped):
    """The tenant's contacts (``contacts:read``)."""

    async def get(self, contact_id: UUID) -> Contact | None:
        """One contact, or ``None`` when the tenant has no such contact."""
        row = await self._fetchrow(
            "contacts:read",
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2",
            contact_id,
        )
        return None if row is None else _contact(row)

    async def recent(self, limit: int = 50) -> list[Contact]:
        """The most recently changed contacts (at most 500)."""
        rows = await self._fetch(
            "contacts:read",
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 "
            "ORDER BY updated_at DESC, id DESC LIMIT $2",
            min(max(limit, 1), 500),
        )
        return [_contact(row) for row in rows]


class Deals(_Scoped):
    """The tenant's deals (``deals:read``)."""

    async def get(self, deal_id: UUID) -> Deal | None:
        """One deal, or ``None``."""
        row = await self._fetchrow(
            "deals:read",
            "SELECT id, title, amount, currency, status, pipeline_id, stage_id, company_id, "
            "owner_id, expected_close_date, created_at, updated_at "
            "FROM deals WHERE tenant_id = $1 AND id = $2",
            deal_id,
        )
        return None if row is None else Deal(**dict(row))

    async def for_contact(self, contact_id: UUID) -> list[Deal]:
        """Deals linked to a contact."""
        rows = await self._fetch(
            "deals:read",
            "SELECT d.id, d.title, d.amount, d.currency, d.status, d.pipeline_id, "
            "d.stage_id, d.company_id, d.owner_id, d.expected_close_date, d.created_at, "
            "d.updated_at FROM deals d "
            "JOIN deal_contacts dc ON dc.tenant_id = d.tenant_id AND dc.deal_id = d.id "
            "WHERE d.tenant_id = $1 AND dc.contact_id = $2 ORDER BY d.created_at",
            contact_id,
        )
        return [Deal(**dict(row)) for row in rows]


class PluginContext:
    """One plugin acting for one tenant: its settings, its granted scopes, its services.

    A plain class, not a dataclass: Litestar injects it into plugin routes and would
    otherwise validate it field by field on every request.
    """

    __slots__ = (
        "contacts",
        "core_db",
        "csrf_token",
        "db",
        "deals",
        "links",
        "log",
        "plugin_id",
        "scopes",
        "settings",
        "tenant_id",
        "tenant_slug",
    )

    def __init__(
        self,
        *,
        plugin_id: str,
        tenant_id: UUID,
        tenant_slug: str,
        settings: Mapping[str, Any],
        scopes: frozenset[str],
        core_db: Database,
        links: PluginLinks | None = None,
    ) -> None:
        """Build the context and its scoped services."""
        self.plugin_id = plugin_id
        self.tenant_id = tenant_id
        self.tenant_slug = tenant_slug
        self.settings = settings
        """The tenant's configuration of the plugin (secrets decrypted), defaults filled in."""
        self.scopes = scopes
        """Scopes the tenant's admin granted."""
        self.core_db = core_db
        self.log = logging.getLogger(f"orbit.plugin.{plugin_id}")
        self.db = PluginDatabase(core_db, plugin_id)
        self.contacts = Contacts(self)
        self.deals = Deals(self)
        self.links = links
        """Token signing and absolute URLs (``None`` outside a running Orbit)."""
        self.csrf_token: str | None = None
        """The signed-in user's CSRF token in a page request, else ``None``."""

    def __repr__(self) -> str:
        """Plugin and tenant (settings may hold secrets)."""
        return f"PluginContext(plugin_id={self.plugin_id!r}, tenant_slug={self.tenant_slug!r})"

    def require(self, scope: str) -> None:
        """Raise :class:`ScopeError` unless the tenant granted ``scope``."""
        if scope not in self.scopes:
            raise ScopeError(
                f"plugin {self.plugin_id} was not granted {scope!r} in workspace "
                f"{self.tenant_slug} (granted: {', '.join(sorted(self.scopes)) or 'none'})"
            )

    def _links(self) -> PluginLinks:
        if self.links is None:
            raise RuntimeError("this context has no signing key or public URL (not from Orbit)")
        return self.links

    def sign(self, data: dict[str, Any], purpose: str, max_age: timedelta | None = None) -> str:
        """A short URL-safe token carrying ``data`` for this plugin, workspace and ``purpose``.

        HMAC-signed with a key only this plugin has; it expires after ``max_age``
        (``None``: never). ``data`` comes back from :meth:`verify` or ``public.open``
        as JSON (a UUID as its string). Tokens are signed, not encrypted: anyone
        holding the link can read ``data``, so put ids in it, not secrets.
        """
        return self._links().sign(self.plugin_id, self.tenant_id, data, purpose, max_age)

    def verify(self, token: str, purpose: str) -> dict[str, Any]:
        """The data of a token this plugin signed in this workspace for ``purpose``.

        Raises :class:`~orbit.plugins.links.TokenError` (a 404) for any other token,
        :class:`~orbit.plugins.links.TokenExpiredError` (a 410) for an expired one.
        """
        tenant_id, data = self._links().verify(self.plugin_id, token, purpose)
        if tenant_id != self.tenant_id:
            raise TokenError("this link is not valid")
        return data

    def url(self, path: str, *, public: bool = False) -> str:
        """The absolute URL of one of this plugin's pages, or of a public route with ``public``.

        Pages are under ``/t/{slug}/apps/{plugin id}``, public routes under
        ``/p/{plugin id}``; both start with ``ORBIT_PUBLIC_URL``.
        """
        return self._links().url(
            path, plugin_id=self.plugin_id, tenant_slug=self.tenant_slug, public=public
        )

    def csrf_field(self) -> Markup:
        """The hidden ``csrf_token`` input a plain (non-htmx) form of a page must carry.

        Empty outside a signed-in page request (public routes need none).
        """
        if not self.csrf_token:
            return Markup("")
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(self.csrf_token)
